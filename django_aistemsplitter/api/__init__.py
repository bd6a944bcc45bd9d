"""REST API (Django REST framework) for split jobs.

Include it under a prefix of your choice::

    path("api/", include("django_aistemsplitter.api.urls"))

The OpenAPI 3 schema is then served at ``api/schema/`` (``aistemsplitter_api:schema``).
"""
