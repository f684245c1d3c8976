"""``python -m hr_middleware.testing``: a fake Hello Retail in the foreground."""

from .server import main

main()
