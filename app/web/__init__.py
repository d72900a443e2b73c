"""The pages people read: sign-in, the operator's dashboard, the frame browser and viewer.

Server-rendered (Jinja2) with charts drawn as inline SVG here: nothing is fetched from the internet,
so the pages work on an archive's closed network."""
