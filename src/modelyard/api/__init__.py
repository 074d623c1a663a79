"""HTTP API: the FastAPI application, its dependencies, middleware and routers."""
