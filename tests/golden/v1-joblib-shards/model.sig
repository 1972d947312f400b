{
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "verificationMaterial": {
    "publicKey": {
      "hint": "6dc8187849bf9ee54bae2f29df75c321de9a38e97dd3f58d75ac8a6fe16e9ed4"
    },
    "tlogEntries": []
  },
  "dsseEnvelope": {
    "payload": "ewogICJfdHlwZSI6ICJodHRwczovL2luLXRvdG8uaW8vU3RhdGVtZW50L3YxIiwKICAicHJlZGljYXRlIjogewogICAgInJlc291cmNlcyI6IFsKICAgICAgewogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2LXNoYXJkZWQtMTY3NzcyMTYiLAogICAgICAgICJkaWdlc3QiOiAiMGE4NWQ5M2M5NTYyY2NiZTdlNDMyZmFhMWUyODMxMzJmYjc1N2RkNTRlZDk4Mjc1OWFmNGZmMjc0Njg3YzVhMCIsCiAgICAgICAgIm5hbWUiOiAibW9kZWwuam9ibGliOjA6MTU3NiIKICAgICAgfSwKICAgICAgewogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2LXNoYXJkZWQtMTY3NzcyMTYiLAogICAgICAgICJkaWdlc3QiOiAiMjliZjE2YTIyNjUwOGZmZDI3YTgzNzA4NGNmOWU1NTVhOGM2ZDkyZTRlZDVhNGVjOGE5NWZmNzAyZTY1YjllYSIsCiAgICAgICAgIm5hbWUiOiAic2FmZWxvYWQuanNvbjowOjE0MzQiCiAgICAgIH0KICAgIF0sCiAgICAic2VyaWFsaXphdGlvbiI6IHsKICAgICAgImFsbG93X3N5bWxpbmtzIjogZmFsc2UsCiAgICAgICJoYXNoX3R5cGUiOiAic2hhMjU2IiwKICAgICAgImlnbm9yZV9wYXRocyI6IFsKICAgICAgICAibW9kZWwuc2lnIgogICAgICBdLAogICAgICAibWV0aG9kIjogInNoYXJkcyIsCiAgICAgICJzaGFyZF9zaXplIjogMTY3NzcyMTYKICAgIH0KICB9LAogICJwcmVkaWNhdGVUeXBlIjogImh0dHBzOi8vbW9kZWxfc2lnbmluZy9zaWduYXR1cmUvdjEuMCIsCiAgInN1YmplY3QiOiBbCiAgICB7CiAgICAgICJkaWdlc3QiOiB7CiAgICAgICAgInNoYTI1NiI6ICJkOGI5NmExYWFiOTUzYTkxY2RmOGNmMjc3ZDc0NTVlMTNhNGFmYTY0NzZmYzAyOTJhZDc4ZjgxMGUwMGMxNmE0IgogICAgICB9LAogICAgICAibmFtZSI6ICJnb2xkZW4vdjEtam9ibGliLXNoYXJkcyIKICAgIH0KICBdCn0=",
    "payloadType": "application/vnd.in-toto+json",
    "signatures": [
      {
        "sig": "XQDGzrrAZhBkCiO4ZvkvNM8mhcpAbxMTojF1mAsAQeV5b3gt/Wp7YCj+bYhg0W1zgoz4KeWRCADiKYLH8D18Dw==",
        "keyid": ""
      }
    ]
  }
}
