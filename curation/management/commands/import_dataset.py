from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from audit.services import audited_command
from curation.errors import DomainError
from curation.management.cli import follow_row
from curation.models import Dataset
from curation.services.datasets import (
    dataset_create_from_archive,
    dataset_create_from_folder,
    dataset_import,
)
from curation.services.sources.create import dataset_create_from_source, dataset_reimport


class Command(BaseCommand):
    help = (
        "Create a dataset from a server folder, a zip or tar archive, WebDataset shards, a URL "
        "table or an img2dataset folder, and import its images (--into: import a finished "
        "dataset's source again, adding only what is new)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Name of the new dataset.")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--folder", help="Absolute path of a folder of images.")
        source.add_argument("--archive", help="Path of a .zip or .tar(.gz) archive of images.")
        source.add_argument(
            "--shards", help="WebDataset shards: paths or URLs, brace patterns ({00000..00099})."
        )
        source.add_argument("--url-table", help="A CSV, TSV, JSONL or Parquet table of URLs.")
        source.add_argument("--img2dataset", help="An img2dataset output folder.")
        source.add_argument(
            "--into", action="store_true", help="Re-import the existing dataset NAME's source."
        )
        parser.add_argument("--url-column", default="url", help="URL column of --url-table.")
        parser.add_argument(
            "--table-format", default="", choices=["", "csv", "tsv", "jsonl", "parquet"]
        )
        parser.add_argument(
            "--class-folders",
            action="store_true",
            help="--folder: each first-level folder's name is its images' class label.",
        )
        parser.add_argument(
            "--queue", action="store_true", help="Hand the import to a Celery worker and follow it."
        )

    @audited_command
    def handle(
        self, *args, name: str, folder: str | None, archive: str | None, queue: bool, **options
    ):
        try:
            if options["into"]:
                existing = Dataset.objects.filter(name=name).first()
                if existing is None:
                    raise CommandError(f"No dataset named {name!r}.")
                dataset = dataset_reimport(dataset=existing, queue=queue)
            elif options["shards"] or options["img2dataset"]:
                dataset = dataset_create_from_source(
                    name=name,
                    shards=options["shards"] or "",
                    img2dataset_folder=options["img2dataset"] or "",
                    queue=queue,
                )
            elif options["url_table"]:
                table = Path(options["url_table"])
                if not table.is_file():
                    raise CommandError(f"{table} is not a file.")
                with open(table, "rb") as handle:
                    dataset = dataset_create_from_source(
                        name=name,
                        url_table=File(handle, name=table.name),
                        url_column=options["url_column"],
                        table_format=options["table_format"],
                        queue=queue,
                    )
            elif folder:
                dataset = dataset_create_from_folder(
                    name=name, folder=folder, queue=queue, class_folders=options["class_folders"]
                )
            elif archive:
                path = Path(archive)
                if not path.is_file():
                    raise CommandError(f"{archive} is not a file.")
                with open(path, "rb") as handle:
                    dataset = dataset_create_from_archive(
                        name=name, archive=File(handle, name=path.name), queue=queue
                    )
            else:
                raise CommandError("Give a folder (--folder) or a zip archive (--archive).")
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Dataset {dataset.pk} ({dataset.name}) created.")

        if queue:

            def read() -> tuple[int, int, str]:
                dataset.refresh_from_db()
                return dataset.processed, dataset.total, dataset.state

            follow_row(
                read=read,
                finished=lambda s: s not in (Dataset.State.PENDING, Dataset.State.IMPORTING),
                description="importing",
                queue=settings.Q16_CPU_QUEUE,
            )
        else:
            with tqdm(desc="importing", unit="file") as bar:

                def progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.n = done
                    bar.refresh()

                dataset = dataset_import(dataset_id=dataset.pk, progress=progress)
        dataset.refresh_from_db()
        if dataset.state != Dataset.State.READY:
            raise CommandError(f"Import {dataset.state}: {dataset.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {dataset.processed - dataset.failed} images; "
                f"{dataset.failed} files failed (see the dataset page for reasons)."
            )
        )
