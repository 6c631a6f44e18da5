"""The API's shipped operations, one module per resource (`hotline.api` entry points)."""
