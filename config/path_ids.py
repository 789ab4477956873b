"""URL path ids that no row can have answer 404 before the view queries anything.

The `<int:...>` converter matches any run of ASCII digits, so /api/datasets/9223372036854775808/
reaches the view with a number larger than a bigint; depending on the database and the query
that is a server error or a silent empty answer. Every integer URL argument is checked here:
one outside 1..2**63-1 is "not found" (a JSON body on /api/, the 404 page elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from curation.api.ids import MAX_ID


class PathIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        for value in (*view_args, *view_kwargs.values()):
            if isinstance(value, int) and not 1 <= value <= MAX_ID:
                message = f"Not found: {value} is not a valid id (ids go from 1 to {MAX_ID})."
                if request.path_info.startswith("/api/"):
                    return JsonResponse({"detail": message}, status=404)
                raise Http404(message)
        return None
