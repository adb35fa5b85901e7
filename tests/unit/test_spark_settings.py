"""The Spark session's Iceberg catalog settings, for AWS and for the emulator."""

from __future__ import annotations

from pipeline.spark.session import iceberg_settings, table_name

CATALOG = "spark.sql.catalog.glue_catalog"
ON_AWS = {
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    CATALOG: "org.apache.iceberg.spark.SparkCatalog",
    f"{CATALOG}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
    f"{CATALOG}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
    f"{CATALOG}.cache-enabled": "false",
    f"{CATALOG}.glue.skip-name-validation": "true",
}


def test_given_no_endpoint_then_the_catalog_uses_the_default_aws_clients() -> None:
    assert iceberg_settings({"AWS_REGION": "eu-west-1"}, "s3://cur") == {
        **ON_AWS,
        f"{CATALOG}.warehouse": "s3://cur",
    }


def test_given_an_aws_endpoint_then_it_is_not_overridden() -> None:
    environ = {"AWS_ENDPOINT_URL": "https://s3.eu-west-1.amazonaws.com"}

    assert iceberg_settings(environ) == ON_AWS


def test_given_the_emulator_then_glue_and_s3_go_to_it_with_static_credentials() -> None:
    environ = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }

    assert iceberg_settings(environ) == {
        **ON_AWS,
        f"{CATALOG}.glue.endpoint": "http://127.0.0.1:5000",
        f"{CATALOG}.s3.endpoint": "http://127.0.0.1:5000",
        f"{CATALOG}.s3.path-style-access": "true",
        f"{CATALOG}.client.region": "us-east-1",
        f"{CATALOG}.s3.access-key-id": "testing",
        f"{CATALOG}.s3.secret-access-key": "secret",
    }


def test_table_names_are_qualified_by_the_iceberg_catalog() -> None:
    assert table_name("my-stack_lake", "sales") == "`glue_catalog`.`my-stack_lake`.`sales`"


def test_given_a_commit_that_lost_a_race_then_it_is_transient() -> None:
    import pytest

    from pipeline.errors import TransientError
    from pipeline.spark.tables import committing

    with pytest.raises(TransientError) as error, committing("glue_catalog.lake.sales"):
        raise RuntimeError(
            "An error occurred while calling o91.append.\n: "
            "org.apache.iceberg.exceptions.CommitFailedException: Cannot commit: stale version"
        )
    assert str(error.value) == "commit glue_catalog.lake.sales: CommitFailedException"

    with pytest.raises(RuntimeError), committing("glue_catalog.lake.sales"):
        raise RuntimeError("org.apache.iceberg.exceptions.ValidationException: bad filter")
