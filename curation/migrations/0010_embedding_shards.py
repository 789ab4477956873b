"""Embeddings leave the database: float16 shard files on the "embeddings" storage, and one
narrow reference row (model key, hash -> shard, row) per embedding.

The data step moves the existing cache in batches of 20,000 rows (one shard each, read by
id ranges so memory stays flat at any table size) and works the same on SQLite and
PostgreSQL; it runs inside the migration (no separate command): at 2 bytes x 512 per row a
million cached embeddings are 1 GB read once and written once, minutes at most. Reversing
puts every vector back into its row and deletes the shard files once that has committed.
"""

import django.db.models.deletion
import numpy as np
from django.db import migrations, models, transaction

BATCH = 20_000


def _update(connection, table, key, columns, pg_types, rows):
    """One UPDATE per batch (unnest arrays on PostgreSQL; executemany on SQLite)."""
    if not rows:
        return
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{t}[]" for t in pg_types)
            aliases = ", ".join(q(c) for c in [key, *columns])
            sets = ", ".join(f"{q(c)} = new.{q(c)}" for c in columns)
            cursor.execute(
                f"UPDATE {q(table)} AS t SET {sets} FROM unnest({arrays}) AS new({aliases}) "
                f"WHERE t.{q(key)} = new.{q(key)}",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            sets = ", ".join(f"{q(c)} = %s" for c in columns)
            cursor.executemany(
                f"UPDATE {q(table)} SET {sets} WHERE {q(key)} = %s",
                [(*values, key_value) for key_value, *values in rows],
            )


def embeddings_to_shards(apps, schema_editor):
    from curation.shard_files import shard_file_write

    Embedding = apps.get_model("curation", "Embedding")
    EmbeddingShard = apps.get_model("curation", "EmbeddingShard")
    connection = schema_editor.connection
    last_id = 0
    while True:
        batch = list(
            Embedding.objects.using(connection.alias)
            .filter(id__gt=last_id, shard__isnull=True)
            .order_by("id")
            .values_list("id", "model_key", "sha256", "vector")[:BATCH]
        )
        if not batch:
            return
        last_id = batch[-1][0]
        # One shard per (model key, dim) within the batch.
        groups: dict[tuple[str, int], list[tuple[int, str, bytes]]] = {}
        for embedding_id, model_key, sha, blob in batch:
            blob = bytes(blob)
            groups.setdefault((model_key, len(blob) // 2), []).append((embedding_id, sha, blob))
        updates = []
        for (model_key, dim), rows in groups.items():
            matrix = np.frombuffer(b"".join(blob for _, _, blob in rows), dtype="<f2")
            matrix = matrix.reshape(len(rows), dim)
            path = shard_file_write(
                model_key=model_key, hashes=[sha for _, sha, _ in rows], matrix=matrix
            )
            shard = EmbeddingShard.objects.using(connection.alias).create(
                model_key=model_key, dim=dim, path=path, rows=len(rows)
            )
            updates += [(row[0], shard.pk, index) for index, row in enumerate(rows)]
        _update(
            connection,
            Embedding._meta.db_table,
            "id",
            ["shard_id", "row"],
            ["bigint", "bigint", "bigint"],
            updates,
        )


def shards_to_embeddings(apps, schema_editor):
    from curation.shard_files import shard_file_delete, shard_file_read

    Embedding = apps.get_model("curation", "Embedding")
    EmbeddingShard = apps.get_model("curation", "EmbeddingShard")
    connection = schema_editor.connection
    paths = []
    for shard in EmbeddingShard.objects.using(connection.alias).order_by("id").iterator():
        matrix = shard_file_read(shard.path).matrix
        rows = [
            (embedding_id, matrix[row].tobytes())
            for embedding_id, row in Embedding.objects.using(connection.alias)
            .filter(shard_id=shard.pk)
            .values_list("id", "row")
        ]
        _update(connection, Embedding._meta.db_table, "id", ["vector"], ["bigint", "bytea"], rows)
        paths.append(shard.path)

    def delete_files():
        for path in paths:
            shard_file_delete(path)

    transaction.on_commit(delete_files, using=connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0009_image_containers"),
    ]

    operations = [
        migrations.CreateModel(
            name="EmbeddingShard",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("model_key", models.CharField(max_length=200)),
                ("dim", models.PositiveIntegerField()),
                ("path", models.CharField(max_length=500, unique=True)),
                ("rows", models.PositiveIntegerField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "chunk",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="curation.scoringchunk",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="curation.scoringrun",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="embedding",
            name="shard",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="embeddings",
                to="curation.embeddingshard",
            ),
        ),
        migrations.AddField(
            model_name="embedding",
            name="row",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.AlterField(
            model_name="embedding",
            name="vector",
            field=models.BinaryField(null=True),
        ),
        migrations.RunPython(embeddings_to_shards, shards_to_embeddings),
        migrations.RemoveField(model_name="embedding", name="vector"),
        migrations.AlterField(
            model_name="embedding",
            name="shard",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="embeddings",
                to="curation.embeddingshard",
            ),
        ),
        migrations.AlterField(
            model_name="embedding",
            name="row",
            field=models.PositiveIntegerField(),
        ),
    ]
