"""The glue between settings and the chat adapters: one module per chat, one convention.

Each module reads what its chat needs from `Settings` into the adapter's own config
(`SlackConfig`, `DiscordConfig`), builds the adapter from that config and the core services
it uses, and hands it `App.gateways` (the `GatewayRegistry` port) to plug its outbox gateway
into. The adapters themselves import nothing from `bot/`.
"""
