"""Datasets, images, cached embeddings, prompt versions and policies, scoring runs, scores,
exports."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class JobState(models.TextChoices):
    """The life of queued work (scoring runs, prompt jobs): one set of states, one meaning."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Dataset(models.Model):
    class SourceKind(models.TextChoices):
        FOLDER = "folder", "Server folder"
        ARCHIVE = "archive", "Uploaded archive"
        URLS = "urls", "URL list"
        WEBDATASET = "webdataset", "WebDataset shards"
        TABLE = "table", "URL table"
        IMG2DATASET = "img2dataset", "img2dataset folder"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        IMPORTING = "importing", "Importing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=200, unique=True)
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    # Folder path (folder imports), the stored archive's path (archive imports) or the
    # stored URL list's path (URL-list imports).
    source = models.CharField(max_length=1024)
    # Archive imports: the uploaded file's name as the admin's computer gave it (the pages
    # show it; `source` is the stored copy's internal path). Empty for other kinds.
    source_name = models.CharField(max_length=255, blank=True, default="")
    # Folder that image relative paths are resolved against.
    root_path = models.CharField(max_length=1024, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    import_started_at = models.DateTimeField(null=True, blank=True)
    import_finished_at = models.DateTimeField(null=True, blank=True)
    # When a match against every hash bank last started (banks changed after it make the
    # dataset's matches stale: a scoring run then matches again before it starts).
    banks_matched_at = models.DateTimeField(null=True, blank=True)
    # Last sign of life of the import (queued, a batch recorded): recovery re-queues an
    # import whose task was lost only when this is old (curation.services.recovery).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # How the source is read: {"class_folders": true} (folders), {"url_column": "url",
    # "table_format": "csv"} (URL tables); empty for the others.
    options = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def source_label(self) -> str:
        """What the pages show as the source: never the internal path of a stored upload."""
        if self.source_kind == self.SourceKind.ARCHIVE:
            return self.source_name or "uploaded archive (name not recorded)"
        if self.source_kind == self.SourceKind.URLS:
            return "URL list"
        if self.source_kind == self.SourceKind.TABLE:
            return self.source_name or "URL table"
        return self.source


class Image(models.Model):
    class Status(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    relative_path = models.CharField(max_length=1024)
    # URL-list imports: where the image was downloaded from (exports show it as the path).
    source_url = models.CharField(max_length=2048, blank=True, default="")
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    phash = models.CharField(max_length=16, blank=True)
    # PDQ (hex, 256 bits) for matching shared hash banks; quality under 50 is unreliable.
    # A database default too: rows written by raw inserts (bulk loaders) leave it empty.
    pdq = models.CharField(max_length=64, blank=True, default="", db_default="")
    pdq_quality = models.PositiveSmallIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    format = models.CharField(max_length=16, blank=True)
    bytes = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # WebDataset / img2dataset: the sample's key and its sidecars (.json, .txt); URL tables:
    # the row's other columns.
    sample_key = models.CharField(max_length=512, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # An image inside a shard (local path or fsspec URL), read by a range read of
    # member_size bytes at member_offset; empty for loose files.
    container = models.CharField(max_length=2048, blank=True, default="")
    member_offset = models.PositiveBigIntegerField(null=True, blank=True)
    member_size = models.PositiveBigIntegerField(null=True, blank=True)
    # ImageFolder imports ("class folders"): the first-level folder's name.
    class_label = models.CharField(max_length=200, blank=True, default="", db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "relative_path"], name="image_unique_path"),
        ]
        indexes = [models.Index(fields=["dataset", "status", "id"], name="image_dataset_status")]

    def __str__(self) -> str:
        return self.relative_path


class ImportChunk(models.Model):
    """One slice of a dataset's import that one worker indexes (hash, header check, perceptual
    hashes): a list of files, URLs, table rows or shards, planned by the import task.

    The chunks of an import are recorded once, together, when its candidates are listed; the
    last one to finish completes the dataset (curation.services.indexing).
    """

    class Kind(models.TextChoices):
        FILES = "files", "Files"
        URLS = "urls", "URLs"
        TABLE_ROWS = "table_rows", "Table rows"
        SHARDS = "shards", "Shards"
        FAILED_DOWNLOADS = "failed_downloads", "img2dataset failed downloads"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="import_chunks")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The candidates, in order: [path, problem] (files), [line, url, problem] (URLs),
    # [row, url, problem, metadata] (table rows), shard paths or URLs (shards), parquet
    # paths (failed downloads).
    items = models.JSONField(default=list)
    item_count = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # The Celery worker (hostname) that last took it, when, and what it recorded once done.
    worker = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    recorded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # Seconds per stage: read (probe or download), write.
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "index"], name="import_chunk_unique_index"),
        ]

    def __str__(self) -> str:
        return f"dataset {self.dataset_id} import chunk {self.index} ({self.state})"


class EmbeddingShard(models.Model):
    """One file of float16 embeddings on the "embeddings" storage (worker.engine.embedding_shards).

    Written once by a scoring chunk (the embeddings it encoded) or by the migration of the
    old in-database cache; rows are referenced by Embedding.
    """

    model_key = models.CharField(max_length=200)
    dim = models.PositiveIntegerField()
    # The name on the "embeddings" storage backend.
    path = models.CharField(max_length=500, unique=True)
    rows = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    run = models.ForeignKey(
        "ScoringRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chunk = models.ForeignKey(
        "ScoringChunk", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.path} ({self.rows} rows)"


class Embedding(models.Model):
    """One image embedding per (model key, content hash): a duplicate file is encoded once.

    A narrow reference: the vector is row ``row`` of ``shard``'s file. ``vector`` reads it
    (one row, for small callers); bulk readers go through curation.services.embeddings.
    """

    model_key = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    shard = models.ForeignKey(EmbeddingShard, on_delete=models.PROTECT, related_name="embeddings")
    row = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model_key", "sha256"], name="embedding_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.model_key} {self.sha256[:12]}"

    @property
    def vector(self) -> bytes:
        """The float16 bytes of this embedding (worker.engine.store format); writes go
        through curation.services.embeddings.embeddings_store."""
        from curation.shard_files import shard_file_read

        return shard_file_read(self.shard.path).matrix[self.row].tobytes()


class PromptVersion(models.Model):
    class Source(models.TextChoices):
        ZERO_SHOT = "zero_shot", "Zero-shot text"
        IMPORTED = "imported", "Imported file"
        TRAINED = "trained", "Trained"

    name = models.CharField(max_length=200)
    model_key = models.CharField(max_length=200, db_index=True)
    dim = models.PositiveIntegerField()
    # float32 (2, dim): row 0 appropriate, row 1 inappropriate; not normalised.
    vectors = models.BinaryField()
    source = models.CharField(max_length=16, choices=Source.choices)
    texts = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # Training data, settings and train / held-out metrics, with the parent's held-out
    # metrics on the same verdicts for comparison.
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_key"],
                condition=Q(is_active=True),
                name="one_active_prompt_per_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_key})"


class PromptJob(models.Model):
    """Work that needs the worker to make a prompt version: zero-shot text encoding, training."""

    class Kind(models.TextChoices):
        ZERO_SHOT = "zero_shot", "Zero-shot from text"
        TRAIN = "train", "Train from verdicts"

    State = JobState

    kind = models.CharField(max_length=16, choices=Kind.choices)
    model_key = models.CharField(max_length=200)
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="prompt_jobs"
    )
    parent = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    result = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    options = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Last sign of life (queued, started): see Dataset.heartbeat_at.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job {self.pk} ({self.state})"


class PromptPolicy(models.Model):
    """A dataset's prompt policy: automatic retraining after N verdicts, and a pinned version.

    Created on first write; a dataset without one has the policy off and nothing pinned.
    """

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="prompt_policy")
    # Retrain after every N new verdicts on the dataset; null = off.
    auto_retrain_every = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    # New verdicts since the policy last queued a training job.
    verdicts_since_retrain = models.PositiveIntegerField(default=0)
    last_retrain_job = models.ForeignKey(
        PromptJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A pinned dataset keeps this version: the policy never activates a candidate for it and
    # activating another version does not rescore it.
    pinned_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "prompt policies"

    def __str__(self) -> str:
        return f"prompt policy of {self.dataset_id}"


class ScoringRun(models.Model):
    class Kind(models.TextChoices):
        SCORE = "score", "Embed and score"
        RESCORE = "rescore", "Rescore from cache"

    State = JobState

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="runs")
    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="runs")
    model_key = models.CharField(max_length=200)
    # The image-encoder backend that encoded the run's new embeddings (Q16_BACKEND, with
    # "auto" resolved), recorded by the first chunk that encodes; "" while none has.
    backend = models.CharField(max_length=32, blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SCORE)
    threshold = models.FloatField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    flagged = models.PositiveIntegerField(default=0)
    # Images whose embedding had to be computed (the rest came from the cache).
    encoded = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    # Summed per-stage seconds over chunks: encode, score, write.
    timings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Last sign of life (queued, a chunk started or finished): see Dataset.heartbeat_at.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.dataset_id} ({self.state})"

    @property
    def images_per_second(self) -> float | None:
        if not self.started_at or not self.processed:
            return None
        end = self.finished_at or timezone.now()
        seconds = (end - self.started_at).total_seconds()
        return round(self.processed / seconds, 2) if seconds > 0 else None


class ScoringChunk(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    # Inclusive range of image ids of the run's dataset.
    first_image_id = models.BigIntegerField()
    last_image_id = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # The Celery worker (its hostname) that last took the chunk, when it took it, and the
    # images it processed once done: the run's per-worker progress.
    worker = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    processed = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="chunk_unique_index"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} chunk {self.index} ({self.state})"


class Score(models.Model):
    # The (run, image) pair is the primary key: no id column, whose sequence and index
    # cost a third of every score write (a million per rescore), and a run's scores are
    # read and replaced by image range, which this key orders.
    # No database foreign keys (db_constraint=False) on either reference: PostgreSQL checks
    # each one per inserted row with a row lock on the referenced row, which measured as
    # much as the insert itself, twice, at a million rows per rescore. The ORM still
    # cascades deletes; a score whose run went away mid-write (a dataset deleted while a
    # chunk committed) is removed by curation.services.orphans.
    pk = models.CompositePrimaryKey("run", "image")
    run = models.ForeignKey(
        ScoringRun,
        on_delete=models.CASCADE,
        related_name="scores",
        db_index=False,
        db_constraint=False,
    )
    # Indexed on its own for the cascade from an image (a dataset's deletion).
    image = models.ForeignKey(
        Image, on_delete=models.CASCADE, related_name="scores", db_constraint=False
    )
    # p[1] of DESIGN.md section 1: probability that the image is inappropriate.
    p_inappropriate = models.FloatField()

    def __str__(self) -> str:
        return f"{self.image_id}: {self.p_inappropriate:.3f} (run {self.run_id})"


class Export(models.Model):
    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSON = "json", "JSON"
        JSONL = "jsonl", "JSON Lines"
        PARQUET = "parquet", "Parquet"
        SHA256 = "sha256", "SHA-256 list"
        PHASH = "phash", "pHash list"
        PDQ = "pdq", "PDQ list"
        # The CSV that ThreatExchange's `dataset --csv` prints and HMA banks take in.
        HASH_BANK = "hashbank", "Hash-bank CSV (ThreatExchange / HMA, PDQ)"

    class Scope(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed by reviewers"
        FLAGGED = "flagged", "Confirmed, plus flagged and not yet reviewed"
        KEEP = "keep", "Keep-list: every image not blocked"

    class CopyKind(models.TextChoices):
        NONE = "", "No cleaned copy"
        WEBDATASET = "webdataset", "WebDataset shards"
        IMAGEFOLDER = "imagefolder", "ImageFolder tree"
        TABLE = "table", "Filtered URL table"

    class CopyMode(models.TextChoices):
        COPY = "copy", "Copy files"
        HARDLINK = "hardlink", "Hard links"
        SYMLINK = "symlink", "Symbolic links"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=8, choices=Format.choices)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.CONFIRMED)
    # The run whose scores the export reports (recorded so the export is a snapshot).
    run = models.ForeignKey(
        ScoringRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    threshold = models.FloatField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # {"categories": [...], "classes": [...], "min_score": x, "max_score": y}; empty: all.
    filters = models.JSONField(default=dict, blank=True)
    # A cleaned copy of the dataset (the keep-list's images) written to copy_target: a folder
    # under Q16_EXPORT_ROOTS or an s3:// URL under Q16_EXPORT_URL_PREFIXES.
    copy_kind = models.CharField(
        max_length=16, choices=CopyKind.choices, blank=True, default=CopyKind.NONE
    )
    copy_target = models.CharField(max_length=2048, blank=True, default="")
    copy_mode = models.CharField(max_length=16, choices=CopyMode.choices, default=CopyMode.COPY)
    # Progress: rows written so far of total (the page and the API show both).
    rows = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    file_path = models.CharField(max_length=1024, blank=True)
    # The provenance sidecar (.json): dataset, prompt version, run, threshold, scope, filters,
    # time, counts; JSON and Parquet files carry the same object inside them too.
    provenance_path = models.CharField(max_length=1024, blank=True, default="")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.dataset_id} ({self.format}, {self.state})"

    @property
    def file_extension(self) -> str:
        """What the stored file and the download are named with."""
        if self.format in (self.Format.SHA256, self.Format.PHASH, self.Format.PDQ):
            return f"{self.format}.txt"
        if self.format == self.Format.HASH_BANK:
            return "hashbank.csv"
        return str(self.format)

    @property
    def filter_labels(self) -> list[str]:
        """The filters as the pages list them ("classes: cat, dog", "score ≥ 0.5")."""
        filters = self.filters or {}
        labels = [
            f"{key}: {', '.join(filters[key])}"
            for key in ("categories", "classes")
            if filters.get(key)
        ]
        if filters.get("min_score") is not None:
            labels.append(f"score ≥ {filters['min_score']}")
        if filters.get("max_score") is not None:
            labels.append(f"score ≤ {filters['max_score']}")
        return labels


class DatasetAssignment(models.Model):
    """A reviewer (non-staff user) may review this dataset; admins may review every dataset."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataset_assignments"
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "dataset"], name="dataset_assignment_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.dataset}"


# Hash banks live in their own module; imported here so Django registers them with the app.
from curation.bank_models import BankMatch, HashBank, HashBankEntry  # noqa: E402, F401
