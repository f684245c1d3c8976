#!/usr/bin/env python
"""The example shop on Django: ``python examples/django_app/manage.py runserver``.

Without ``HELLO_RETAIL_WEBSITE_UUID`` in the environment it starts an embedded
fake Hello Retail (see shop/settings.py); with it, it talks to Hello Retail.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
