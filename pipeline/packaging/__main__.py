"""``python -m pipeline.packaging --out build [--only lambda|glue] [--publish BUCKET]``.

Builds the artifacts; ``--publish`` then uploads the Glue half to the artifacts bucket
(content-addressed wheels written once: ``glue_artifacts.publish_glue_artifacts``).

``--lock`` refreshes every lock instead (``make lock``; :mod:`pipeline.packaging.locks`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline.errors import PipelineError

logger = logging.getLogger("pipeline.packaging")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.packaging", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build"), help="build directory")
    parser.add_argument("--only", choices=["lambda", "glue"], help="one half only")
    parser.add_argument("--lock", action="store_true", help="refresh every lock (make lock)")
    parser.add_argument("--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument(
        "--publish",
        metavar="BUCKET",
        help="upload the Glue artifacts to the stack's ArtifactsBucket (as the deploy role)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        if args.lock:
            from pipeline.packaging.locks import main as refresh_locks

            return refresh_locks([])
        if args.only in (None, "lambda"):
            _build_lambda(args.out)
        if args.only in (None, "glue"):
            # The Glue half is its own module; imported only when asked for.
            _build_glue(args.out, args.publish)
        elif args.publish:
            parser.error("--publish takes the Glue half (--only glue, or no --only)")
    except PipelineError as e:
        logger.error("error: %s", e)
        return 1
    return 0


def _build_glue(out: Path, bucket: str | None) -> None:
    # The Glue half is its own module; imported only when asked for.
    from pipeline.packaging.glue_artifacts import build_glue_artifacts, publish_glue_artifacts

    artifacts = build_glue_artifacts(out)
    for path in artifacts.files():
        logger.info("built %s", path)
    logger.info("parameters for the deploy: %s", artifacts.root / "parameters.txt")
    if bucket:
        import boto3

        written = publish_glue_artifacts(artifacts, boto3.client("s3"), bucket)
        for key in written:
            logger.info("uploaded s3://%s/%s", bucket, key)
        kept = len(artifacts.files()) - len(written)
        logger.info("%d artifacts already in s3://%s", kept, bucket)


def _build_lambda(out: Path) -> None:
    from pipeline.packaging.lambda_artifacts import build_lambda_artifacts
    from pipeline.packaging.limits import MB, tree_files, tree_size

    artifacts = build_lambda_artifacts(out)
    layer_zip = artifacts.root / "layer.zip"
    logger.info(
        "layer %s: %d files, %.1f MB unzipped, %.1f MB zipped",
        artifacts.layer,
        len(tree_files(artifacts.layer)),
        tree_size(artifacts.layer) / MB,
        layer_zip.stat().st_size / MB,
    )
    for logical_id in artifacts.functions:
        logger.info("function %s: %s", logical_id, artifacts.code_dir(logical_id))


if __name__ == "__main__":
    sys.exit(main())
