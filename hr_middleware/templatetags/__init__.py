"""Django template tags of the ``"hr_middleware"`` app: ``{% load hello_retail %}``."""
