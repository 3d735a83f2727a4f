"""WeCom (企业微信) customer groups: the encrypted callback (ingest), the API calls (delivery)."""
