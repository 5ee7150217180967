"""The Klaviyo client and the sandbox server, over real loopback HTTP."""
