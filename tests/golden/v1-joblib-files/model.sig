{
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "verificationMaterial": {
    "publicKey": {
      "hint": "6dc8187849bf9ee54bae2f29df75c321de9a38e97dd3f58d75ac8a6fe16e9ed4"
    },
    "tlogEntries": []
  },
  "dsseEnvelope": {
    "payload": "ewogICJfdHlwZSI6ICJodHRwczovL2luLXRvdG8uaW8vU3RhdGVtZW50L3YxIiwKICAicHJlZGljYXRlIjogewogICAgInJlc291cmNlcyI6IFsKICAgICAgewogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2IiwKICAgICAgICAiZGlnZXN0IjogIjBhODVkOTNjOTU2MmNjYmU3ZTQzMmZhYTFlMjgzMTMyZmI3NTdkZDU0ZWQ5ODI3NTlhZjRmZjI3NDY4N2M1YTAiLAogICAgICAgICJuYW1lIjogIm1vZGVsLmpvYmxpYiIKICAgICAgfSwKICAgICAgewogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2IiwKICAgICAgICAiZGlnZXN0IjogIjMwZjBlNzdkMzRlZDc1MWY5ODYyM2Y4YzI5OWRhMzcwYTZlMjIzMjA2ZjE5OGViYjdmZmY5ZmVmNmM4ZDE2ODUiLAogICAgICAgICJuYW1lIjogInNhZmVsb2FkLmpzb24iCiAgICAgIH0KICAgIF0sCiAgICAic2VyaWFsaXphdGlvbiI6IHsKICAgICAgImFsbG93X3N5bWxpbmtzIjogZmFsc2UsCiAgICAgICJoYXNoX3R5cGUiOiAic2hhMjU2IiwKICAgICAgImlnbm9yZV9wYXRocyI6IFsKICAgICAgICAibW9kZWwuc2lnIgogICAgICBdLAogICAgICAibWV0aG9kIjogImZpbGVzIgogICAgfQogIH0sCiAgInByZWRpY2F0ZVR5cGUiOiAiaHR0cHM6Ly9tb2RlbF9zaWduaW5nL3NpZ25hdHVyZS92MS4wIiwKICAic3ViamVjdCI6IFsKICAgIHsKICAgICAgImRpZ2VzdCI6IHsKICAgICAgICAic2hhMjU2IjogIjNhNmMzYjk0MzdhOGY2NGQwNzI4YmNlNzA5MmU3ZmU5NmQxYzVhZDM3NTkzODJhMTkzNWYxMWIwMmJlNGIzOWEiCiAgICAgIH0sCiAgICAgICJuYW1lIjogImdvbGRlbi92MS1qb2JsaWItZmlsZXMiCiAgICB9CiAgXQp9",
    "payloadType": "application/vnd.in-toto+json",
    "signatures": [
      {
        "sig": "1PalLXLX63sNwxRHNkUMTHXJK5mmZgta0IygMxbqSjhX646s5j9pSb5AO54QCAhhj3sWnNXhtpAObMkg01R8Cg==",
        "keyid": ""
      }
    ]
  }
}
