"""MCP: Stride's tools (``ask_stride``, ``search_articles``, ``list_articles``) and its articles as
resources, for MCP clients, over stdio (``stride mcp``) or streamable HTTP (``/mcp`` on the API).
``server.build_mcp_server`` builds it over an engine provider; the transports are wired elsewhere (the
CLI and ``service.api.app``)."""
