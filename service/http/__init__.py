"""The HTTP surface: the FastAPI app, its routes and the interfaces mounted on it."""
