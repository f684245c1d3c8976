"""The decision, pure: request facts and settings in; the id, cookie writes and headers out.

No sockets, no event loop, no framework here. ``ids`` says what an id is;
``facts`` is what the core may know of a request; ``settings`` every option;
``cookies`` finds ids in a Cookie header and renders Set-Cookie values;
``returning`` is the hot path (the usual returning visitor); ``decide`` is the
behaviour table; ``headers`` patches a response's headers; ``visit`` is the
plain record of one request's outcome; ``log`` names every message logged.
"""
