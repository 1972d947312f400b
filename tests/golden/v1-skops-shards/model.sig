{
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "verificationMaterial": {
    "publicKey": {
      "hint": "6dc8187849bf9ee54bae2f29df75c321de9a38e97dd3f58d75ac8a6fe16e9ed4"
    },
    "tlogEntries": []
  },
  "dsseEnvelope": {
    "payload": "ewogICJfdHlwZSI6ICJodHRwczovL2luLXRvdG8uaW8vU3RhdGVtZW50L3YxIiwKICAicHJlZGljYXRlIjogewogICAgInJlc291cmNlcyI6IFsKICAgICAgewogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2LXNoYXJkZWQtMTY3NzcyMTYiLAogICAgICAgICJkaWdlc3QiOiAiYjMyMDQ3YjFlZjUwZTAxM2ZkZjI2ZGUxMzJhYzBkYzdiYThhNjM4NzJlZTk2NzgzYmE1YTdiMmRhNTA5N2U3NCIsCiAgICAgICAgIm5hbWUiOiAibW9kZWwuc2tvcHM6MDoyMzY3OCIKICAgICAgfSwKICAgICAgewogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2LXNoYXJkZWQtMTY3NzcyMTYiLAogICAgICAgICJkaWdlc3QiOiAiZjNlZGY2YWZlZTRiZjFlMmFjNDQxNGM5ZmEwZmI4ZGFiNDQwZGM1ZDM3ZjU5MjViNzE0YTMyYTRiYWFmZjljZCIsCiAgICAgICAgIm5hbWUiOiAic2FmZWxvYWQuanNvbjowOjE0MzIiCiAgICAgIH0KICAgIF0sCiAgICAic2VyaWFsaXphdGlvbiI6IHsKICAgICAgImFsbG93X3N5bWxpbmtzIjogZmFsc2UsCiAgICAgICJoYXNoX3R5cGUiOiAic2hhMjU2IiwKICAgICAgImlnbm9yZV9wYXRocyI6IFsKICAgICAgICAibW9kZWwuc2lnIgogICAgICBdLAogICAgICAibWV0aG9kIjogInNoYXJkcyIsCiAgICAgICJzaGFyZF9zaXplIjogMTY3NzcyMTYKICAgIH0KICB9LAogICJwcmVkaWNhdGVUeXBlIjogImh0dHBzOi8vbW9kZWxfc2lnbmluZy9zaWduYXR1cmUvdjEuMCIsCiAgInN1YmplY3QiOiBbCiAgICB7CiAgICAgICJkaWdlc3QiOiB7CiAgICAgICAgInNoYTI1NiI6ICIxOGYyN2U5NDNjNjU5NDYxNzE1YjM4MWVlMmJiNWMyYzE4MGI4NmIzMzRhNmI5MjMyY2ZmMTRhYzMyMTllNjQ4IgogICAgICB9LAogICAgICAibmFtZSI6ICJnb2xkZW4vdjEtc2tvcHMtc2hhcmRzIgogICAgfQogIF0KfQ==",
    "payloadType": "application/vnd.in-toto+json",
    "signatures": [
      {
        "sig": "rRxOn0Lsj2+7pWqrMCeswiHEBRV75InP1nt4cqD69xEW5ON7AlxjYRS1w/Pug5IXViDtuMJcAbjulkax09ayBg==",
        "keyid": ""
      }
    ]
  }
}
