"""Request and response bodies of the app API, per entity (Create / Update / Public)."""
