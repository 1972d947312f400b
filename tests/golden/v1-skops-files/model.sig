{
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "verificationMaterial": {
    "publicKey": {
      "hint": "6dc8187849bf9ee54bae2f29df75c321de9a38e97dd3f58d75ac8a6fe16e9ed4"
    },
    "tlogEntries": []
  },
  "dsseEnvelope": {
    "payload": "ewogICJfdHlwZSI6ICJodHRwczovL2luLXRvdG8uaW8vU3RhdGVtZW50L3YxIiwKICAicHJlZGljYXRlIjogewogICAgInJlc291cmNlcyI6IFsKICAgICAgewogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2IiwKICAgICAgICAiZGlnZXN0IjogIjQ1NmYzNGRmMzJhYTczN2ZiMzljZTJiM2RiNTYxYjZlMTdkODlmNTE1M2M4NTQzMDFkMjE2NmUzZjZjYjE3MjIiLAogICAgICAgICJuYW1lIjogIm1vZGVsLnNrb3BzIgogICAgICB9LAogICAgICB7CiAgICAgICAgImFsZ29yaXRobSI6ICJzaGEyNTYiLAogICAgICAgICJkaWdlc3QiOiAiZTM2YzIxODYyNjA4NjlmYzJkMWNhYjlhZmVjODhlNjE4NWViMmFiYTgyMGY0Mzg5MDFlZTQ1N2I1MDNlMDk2YiIsCiAgICAgICAgIm5hbWUiOiAic2FmZWxvYWQuanNvbiIKICAgICAgfQogICAgXSwKICAgICJzZXJpYWxpemF0aW9uIjogewogICAgICAiYWxsb3dfc3ltbGlua3MiOiBmYWxzZSwKICAgICAgImhhc2hfdHlwZSI6ICJzaGEyNTYiLAogICAgICAiaWdub3JlX3BhdGhzIjogWwogICAgICAgICJtb2RlbC5zaWciCiAgICAgIF0sCiAgICAgICJtZXRob2QiOiAiZmlsZXMiCiAgICB9CiAgfSwKICAicHJlZGljYXRlVHlwZSI6ICJodHRwczovL21vZGVsX3NpZ25pbmcvc2lnbmF0dXJlL3YxLjAiLAogICJzdWJqZWN0IjogWwogICAgewogICAgICAiZGlnZXN0IjogewogICAgICAgICJzaGEyNTYiOiAiYmYxMThlYzczOTkyYjJlZmVhZDJiOGU5N2I2ZTUxZmIxMWU1NDhhYzk4NWQyZmEwOWMyNGMwMGMwODQ1ZDI2YiIKICAgICAgfSwKICAgICAgIm5hbWUiOiAiZ29sZGVuL3YxLXNrb3BzLWZpbGVzIgogICAgfQogIF0KfQ==",
    "payloadType": "application/vnd.in-toto+json",
    "signatures": [
      {
        "sig": "2Gv1+hXK0wbf3ievv3mjQltw7gG9D2gJhvFYRqw4WALQvAwWCj9vutpPOtjDzs5fcr13fI6k5r97kIsjrQigDQ==",
        "keyid": ""
      }
    ]
  }
}
