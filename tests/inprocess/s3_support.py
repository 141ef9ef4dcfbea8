"""A real S3 API for tests: moto's server on a free loopback port, and a boto3 client for it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def s3_endpoint():
    """A real S3 API (moto in server mode) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")
