"""Views of the split API: create, list, read, retry, cancel, download stems."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.http import FileResponse, Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from django_aistemsplitter import contract
from django_aistemsplitter.api.permissions import IsOwnerOrStaff
from django_aistemsplitter.api.serializers import (
    STATUS_VALUES,
    ErrorSerializer,
    SplitCreateSerializer,
    SplitJobSerializer,
    SplitValidationErrorSerializer,
)
from django_aistemsplitter.api.throttling import SplitCreateRateThrottle
from django_aistemsplitter.exceptions import AiStemSplitterError
from django_aistemsplitter.models import RETRYABLE, SplitJob, Stem

F = TypeVar("F", bound=Callable[..., Any])

NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such job (or not yours).")
CONFLICT = OpenApiResponse(ErrorSerializer, description="Not possible in the job's status.")
UNAUTHENTICATED = OpenApiResponse(ErrorSerializer, description="Not authenticated.")


def documented(**kwargs: Any) -> Callable[[F], F]:
    """``extend_schema`` based on drf-spectacular's ``AutoSchema`` whatever the project's
    ``DEFAULT_SCHEMA_CLASS`` is, so the schema works without extra settings."""

    def decorator(func: F) -> F:
        extra = func.__dict__.setdefault("kwargs", {})
        extra.setdefault("schema", AutoSchema)
        return extend_schema(**kwargs)(func)

    return decorator


class SplitPagination(PageNumberPagination):
    page_size = contract.LIST_LIMIT_DEFAULT
    page_size_query_param = "page_size"
    max_page_size = contract.LIST_LIMIT_MAX


class SplitJobViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Split jobs of the requesting user (staff: of everyone)."""

    schema = AutoSchema()
    serializer_class = SplitJobSerializer
    permission_classes = (IsOwnerOrStaff,)
    pagination_class = SplitPagination
    parser_classes = (MultiPartParser, FormParser, JSONParser)
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_queryset(self) -> QuerySet[SplitJob]:
        queryset = (
            SplitJob.objects.visible_to(self.request.user)
            .select_related("owner")
            .prefetch_related("stems")
            .order_by("-created_at", "-pk")
        )
        if self.action == "list":
            params = self.request.query_params
            if params.get("status"):
                queryset = queryset.filter(status=params["status"])
            if params.get("model"):
                queryset = queryset.filter(stem_model=params["model"])
        return queryset

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return SplitCreateSerializer
        return SplitJobSerializer

    def get_throttles(self) -> list[Any]:
        throttles = list(super().get_throttles())
        if self.action == "create":
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
            "Upload audio as multipart/form-data (field `audio`) or send JSON with "
            "`source_url`. The job is validated (decodable audio, size limit, a model "
            "the backend serves) before anything is created."
        ),
        request={
            "multipart/form-data": SplitCreateSerializer,
            "application/json": SplitCreateSerializer,
        },
        responses={
            201: SplitJobSerializer,
            400: OpenApiResponse(SplitValidationErrorSerializer, description="Invalid request."),
            401: UNAUTHENTICATED,
            429: OpenApiResponse(ErrorSerializer, description="Too many splits; retry later."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from django_aistemsplitter import services

        serializer = SplitCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            job = services.split(
                data.get("audio") or None,
                url=data.get("source_url") or None,
                stem_model=data.get("stem_model") or None,
                output_format=data.get("output_format") or None,
                owner=request.user,
                metadata=data.get("metadata") or None,
            )
        except (AiStemSplitterError, ValueError) as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        return self._job_response(job, status.HTTP_201_CREATED)

    @documented(
        summary="Retry a failed or cancelled job",
        request=None,
        responses={200: SplitJobSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        from django_aistemsplitter import services

        job = self.get_object()
        if job.status not in RETRYABLE:
            return Response(
                {"detail": f"Only failed or cancelled jobs can be retried; it is {job.status}."},
                status=status.HTTP_409_CONFLICT,
            )
        try:
            job = services.retry(job)
        except (AiStemSplitterError, ValueError) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return self._job_response(job)

    @documented(
        summary="Cancel a running job",
        request=None,
        responses={200: SplitJobSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        from django_aistemsplitter import services

        job = self.get_object()
        if job.is_terminal:
            return Response(
                {"detail": f"The job is already {job.status}."}, status=status.HTTP_409_CONFLICT
            )
        try:
            cancelled = services.cancel(job)
        except (AiStemSplitterError, ValueError) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if not cancelled:
            job.refresh_from_db()
            return Response(
                {"detail": f"The job could not be cancelled; it is {job.status}."},
                status=status.HTTP_409_CONFLICT,
            )
        return self._job_response(job)

    @documented(
        summary="Download one stem",
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH, description="Stem name.")],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            401: UNAUTHENTICATED,
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["get"], url_path=r"stems/(?P<name>[^/]+)", url_name="stem")
    def stem(self, request: Request, pk: str | None = None, name: str = "") -> FileResponse:
        job = self.get_object()
        if not contract.is_safe_stem_name(name):
            raise Http404("No such stem.")
        stem: Stem | None = job.stems.filter(name=name).first()
        if stem is None or not stem.file:
            raise Http404("No such stem.")
        try:
            handle = stem.file.open("rb")
        except (OSError, ValueError) as exc:
            raise Http404("The stem file is missing from storage.") from exc
        file_name = stem.file.name or ""
        ext = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else stem.format
        return FileResponse(
            handle,
            as_attachment=True,
            filename=f"{stem.name}.{ext or 'wav'}",
            content_type=contract.CONTENT_TYPES.get(ext, "application/octet-stream"),
        )
