"""The example Django shop: the shared demo page and an async view that show the visitor's trackingUserId."""
