"""The example Django shop: a page and an async view that show the visitor's trackingUserId."""
