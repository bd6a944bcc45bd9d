"""Views of the split API: create, list, read, retry, cancel, download stems.

Malformed input is a 400, never a 500: the parsers (:mod:`.parsers`) bound and
vet every body, an upload over ``MAX_UPLOAD_BYTES`` is cut off while it streams
in (:mod:`django_aistemsplitter.uploads`), and what a split request may be is
decided by the one validation path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.urls import reverse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_aistemsplitter import services, tickets, uploads
from django_aistemsplitter.api.pagination import ORDERING, SplitPagination
from django_aistemsplitter.api.parsers import (
    BODY_LIMIT_ERRORS,
    FormParser,
    JSONParser,
    MultiPartParser,
)
from django_aistemsplitter.api.permissions import IsOwnerOrPermitted
from django_aistemsplitter.api.serializers import (
    STATUS_VALUES,
    URL_NAMESPACE,
    ErrorSerializer,
    SplitCreateSerializer,
    SplitJobSerializer,
    SplitValidationErrorSerializer,
    UploadTicketErrorSerializer,
    UploadTicketRequestSerializer,
    UploadTicketSerializer,
)
from django_aistemsplitter.api.throttling import CREATE_SCOPE_ACTIONS, SplitCreateRateThrottle
from django_aistemsplitter.exceptions import AiStemSplitterError
from django_aistemsplitter.models import RETRYABLE, SplitJob, Stem
from django_aistemsplitter.serving import serve, stem_audio, stem_or_404
from django_aistemsplitter.validation import InvalidSplitRequest

F = TypeVar("F", bound=Callable[..., Any])

NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such job (or not yours).")
CONFLICT = OpenApiResponse(ErrorSerializer, description="Not possible in the job's status.")
UNAUTHENTICATED = OpenApiResponse(ErrorSerializer, description="Not authenticated.")
FORBIDDEN = OpenApiResponse(
    ErrorSerializer, description="Another user's job, without the change_splitjob permission."
)
TOO_MANY = OpenApiResponse(ErrorSerializer, description="Too many splits; retry later.")
#: What an action on one job (retry, cancel) may answer.
JOB_ACTION_RESPONSES = {
    200: SplitJobSerializer,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    409: CONFLICT,
}


def documented(**kwargs: Any) -> Callable[[F], F]:
    """``extend_schema`` based on drf-spectacular's ``AutoSchema`` whatever the project's
    ``DEFAULT_SCHEMA_CLASS`` is, so the schema works without extra settings."""

    def decorator(func: F) -> F:
        extra = func.__dict__.setdefault("kwargs", {})
        extra.setdefault("schema", AutoSchema)
        return extend_schema(**kwargs)(func)

    return decorator


def _conflict(detail: str) -> Response:
    """409: the job's status does not allow the action; ``detail`` says why."""
    return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)


def _first_challenge(authenticators: Any, request: Request) -> str:
    for authenticator in authenticators:
        header = authenticator.authenticate_header(request)
        if header:
            return str(header)
    return ""  # none: DRF then answers 403


class ServiceUnavailable(APIException):
    """503: something the request needs (the service's upload presign) is not answering."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Temporarily unavailable; try again later."
    default_code = "unavailable"


class APIRootView(APIView):
    """``GET /api/``: where everything is, so the API can be explored from its root."""

    schema = None
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        def link(name: str) -> str:
            return request.build_absolute_uri(reverse(f"{URL_NAMESPACE}:{name}"))

        return Response(
            {
                "splits": link("split-list"),
                "uploads": link("split-upload-ticket"),
                "schema": link("schema"),
                "swagger_ui": link("swagger-ui"),
            }
        )


class SplitJobViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Split jobs of the requesting user (of everyone, with the ``view_splitjob`` permission)."""

    schema = AutoSchema()
    serializer_class = SplitJobSerializer
    permission_classes = (IsOwnerOrPermitted,)
    pagination_class = SplitPagination
    parser_classes = (MultiPartParser, FormParser, JSONParser)
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_authenticate_header(self, request: Request) -> str:
        """The first challenge any configured authentication class offers.

        DRF only asks the first class, and session authentication has none, so
        an anonymous call would get 403. Asking each (basic, token...) lets a
        client that is not logged in get 401 with ``WWW-Authenticate``.
        """
        return _first_challenge(self.get_authenticators(), request)

    def get_queryset(self) -> QuerySet[SplitJob]:
        queryset = (
            SplitJob.objects.visible_to(self.request.user)
            # All the serializer reads besides the job's own row. Ordered by id alone:
            # the model's ("job", "id") would join the jobs again to sort by their
            # ordering, which is one value within a job.
            .prefetch_related(Prefetch("stems", queryset=Stem.objects.order_by("id")))
            .order_by(*ORDERING)
        )
        if self.action != "list":
            queryset = queryset.select_related("owner")
        else:
            # No owner join: a list row only needs ``owner_id``, which is in the row.
            params = self.request.query_params
            wanted = params.get("status")
            if wanted:
                if wanted not in STATUS_VALUES:
                    raise ValidationError(
                        {"status": [f"Unknown status; use one of {', '.join(STATUS_VALUES)}."]}
                    )
                queryset = queryset.filter(status=wanted)
            model = params.get("model")
            if model:
                if "\x00" in model:  # PostgreSQL text cannot hold it: no such model
                    raise ValidationError({"model": ["Not a model name."]})
                queryset = queryset.filter(stem_model=model)
        return queryset

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return SplitCreateSerializer
        if self.action == "upload_ticket":
            return UploadTicketRequestSerializer
        return SplitJobSerializer

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        drf_request = super().initialize_request(request, *args, **kwargs)  # sets self.action
        if self.action == "create":
            # Before anything reads the body (DRF parses it lazily, on request.data).
            uploads.install(request)
        return drf_request

    def handle_exception(self, exc: Exception) -> Response:
        # Django refuses an oversized body or too many fields while DRF reads it,
        # as a SuspiciousOperation: answer like any other parse error.
        if isinstance(exc, BODY_LIMIT_ERRORS):
            exc = ParseError(str(exc))
        return super().handle_exception(exc)

    def get_throttles(self) -> list[Any]:
        throttles = list(super().get_throttles())
        if self.action in CREATE_SCOPE_ACTIONS:
            throttles.append(SplitCreateRateThrottle())
        return throttles

    def _job_response(self, job: SplitJob, code: int = status.HTTP_200_OK) -> Response:
        job = self.get_queryset().get(pk=job.pk)  # fresh state, stems prefetched
        return Response(
            SplitJobSerializer(job, context=self.get_serializer_context()).data, status=code
        )

    @documented(
        summary="List split jobs",
        parameters=[
            OpenApiParameter(
                "status", str, enum=list(STATUS_VALUES), description="Only this status."
            ),
            OpenApiParameter("model", str, description="Only this model."),
        ],
        responses={200: SplitJobSerializer(many=True), 401: UNAUTHENTICATED},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @documented(
        summary="Read one split job and its stems",
        responses={200: SplitJobSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @documented(
        summary="Start a split",
        description=(
            "Upload audio as multipart/form-data (field `audio`), send JSON with "
            "`source_url`, or give `upload`: the id of a direct-upload ticket whose file "
            "was sent (see `POST /splits/uploads/`). Exactly one of the three. The job is "
            "validated (decodable audio, size limit, a model the backend serves) before "
            "anything is created; refused direct-upload audio is deleted."
        ),
        request={
            "multipart/form-data": SplitCreateSerializer,
            "application/json": SplitCreateSerializer,
        },
        responses={
            201: SplitJobSerializer,
            400: OpenApiResponse(SplitValidationErrorSerializer, description="Invalid request."),
            401: UNAUTHENTICATED,
            429: TOO_MANY,
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SplitCreateSerializer(data=request.data, context=self.get_serializer_context())
        refused = uploads.refusal(request)  # the body is parsed: was the upload cut off?
        if refused is not None:
            raise serializer.refusal(refused)
        serializer.is_valid(raise_exception=True)  # the one validation path, audio probed once
        data = serializer.validated_data
        if data.get("upload"):
            try:  # the same path, on the file the ticket received
                job = tickets.redeem(
                    data["upload"],
                    owner=request.user,
                    stem_model=data.get("stem_model") or None,
                    output_format=data.get("output_format") or None,
                    metadata=data.get("metadata") or None,
                )
            except InvalidSplitRequest as exc:
                raise serializer.refusal(exc, rename={"audio": "upload"}) from exc
            except tickets.UploadUnavailableError as exc:
                raise ServiceUnavailable(str(exc)) from exc
        else:
            job = services.create_split(
                data["split_request"], owner=request.user, metadata=data.get("metadata") or None
            )
        response = self._job_response(job, status.HTTP_201_CREATED)
        response["Location"] = response.data["url"]
        return response

    @documented(
        summary="Ask for a direct-upload ticket",
        description=(
            "Declare the file (`filename`, exact `size` in bytes, optional `content_type`) "
            "and get where to send it: `method` PUT (the body is the file, with `headers`) "
            "or POST (multipart/form-data of `fields`, in order, then the file as the "
            "part named `file_field`) to `url`, before `expires_at`. Then `POST /splits/` "
            "with `upload` set to the ticket's `id`. The bytes go straight to storage (S3), "
            "to the service, or to this site's streaming upload view; a ticket is single "
            "use and its owner's only. Counts against the create throttle."
        ),
        request={"application/json": UploadTicketRequestSerializer},
        responses={
            201: UploadTicketSerializer,
            400: OpenApiResponse(UploadTicketErrorSerializer, description="Invalid request."),
            401: UNAUTHENTICATED,
            429: TOO_MANY,
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="uploads",
        url_name="upload-ticket",
        parser_classes=(JSONParser, FormParser),  # no multipart: the file goes elsewhere
    )
    def upload_ticket(self, request: Request) -> Response:
        serializer = UploadTicketRequestSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            issued = tickets.open_ticket(
                owner=request.user,
                filename=data["filename"],
                size=data["size"],
                content_type=data.get("content_type") or "",
            )
        except InvalidSplitRequest as exc:
            raise serializer.refusal(exc) from exc
        except tickets.UploadUnavailableError as exc:
            raise ServiceUnavailable(str(exc)) from exc
        body = issued.as_json()
        # The app's own upload view answers with a path: give clients the whole URL.
        body["url"] = request.build_absolute_uri(body["url"])
        return Response(body, status=status.HTTP_201_CREATED)

    @documented(
        summary="Retry a failed or cancelled job",
        description="Counts against the create throttle: a retry is a new split.",
        request=None,
        responses={**JOB_ACTION_RESPONSES, 429: TOO_MANY},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        if job.status not in RETRYABLE:
            return _conflict(f"Only failed or cancelled jobs can be retried; it is {job.status}.")
        try:
            job = services.retry(job)
        except (AiStemSplitterError, ValueError) as exc:
            return _conflict(str(exc))
        return self._job_response(job)

    @documented(
        summary="Cancel a running job",
        request=None,
        responses=JOB_ACTION_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        if job.is_terminal:
            return _conflict(f"The job is already {job.status}.")
        try:
            cancelled = services.cancel(job)
        except (AiStemSplitterError, ValueError) as exc:
            return _conflict(str(exc))
        if not cancelled:
            job.refresh_from_db()
            return _conflict(f"The job could not be cancelled; it is {job.status}.")
        return self._job_response(job)

    @documented(
        summary="Download one stem",
        description=(
            "The stem's bytes, or, when the storage signs URLs (S3), a 302 redirect to a "
            "short-lived signed URL that serves them. `Range` asks for one byte range "
            "(206); `If-None-Match` with the `ETag` (the stem's SHA-256) revalidates (304)."
        ),
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH, description="Stem name.")],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            (206, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The byte range asked for."
            ),
            302: OpenApiResponse(description="Fetch the stem from the `Location` URL."),
            304: OpenApiResponse(description="The copy named by `If-None-Match` is current."),
            401: UNAUTHENTICATED,
            404: NOT_FOUND,
            416: OpenApiResponse(description="The range lies past the end of the stem."),
        },
    )
    @action(detail=True, methods=["get"], url_path=r"stems/(?P<name>[^/]+)", url_name="stem")
    def stem(self, request: Request, pk: str | None = None, name: str = "") -> HttpResponseBase:
        stem = stem_or_404(self.get_object(), name)
        # The Django request under DRF's: serving reads its headers, not a parsed body.
        return serve(request._request, stem_audio(stem), as_attachment=True)
