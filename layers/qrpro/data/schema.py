"""The table definitions for tests and benchmarks that create tables in
DynamoDB Local without a stack (`qrpro local` creates its tables from the
synthesized template). ``infra/`` declares the same keys and indexes in CDK;
tests/infra checks that the two agree."""

from __future__ import annotations

from typing import Any

from qrpro.data import keys as k

MAIN_TABLE: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": k.PK, "AttributeType": "S"},
        {"AttributeName": k.SK, "AttributeType": "S"},
        {"AttributeName": k.LSI1SK, "AttributeType": "S"},
        {"AttributeName": k.GSI1PK, "AttributeType": "S"},
        {"AttributeName": k.GSI1SK, "AttributeType": "S"},
    ],
    "KeySchema": [{"AttributeName": k.PK, "KeyType": "HASH"}, {"AttributeName": k.SK, "KeyType": "RANGE"}],
    "LocalSecondaryIndexes": [{
        "IndexName": k.LSI1,
        "KeySchema": [{"AttributeName": k.PK, "KeyType": "HASH"}, {"AttributeName": k.LSI1SK, "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }],
    "GlobalSecondaryIndexes": [{
        "IndexName": k.GSI1,
        "KeySchema": [{"AttributeName": k.GSI1PK, "KeyType": "HASH"},
                      {"AttributeName": k.GSI1SK, "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }],
    "BillingMode": "PAY_PER_REQUEST",
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
}

IDEMPOTENCY_TABLE: dict[str, Any] = {
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def create_tables(client: Any, table_name: str, idempotency_table_name: str) -> None:
    """Create both tables if missing (idempotent) and enable TTL."""
    existing = set(client.list_tables().get("TableNames", []))
    for name, spec, ttl_attr in ((table_name, MAIN_TABLE, k.TTL),
                                 (idempotency_table_name, IDEMPOTENCY_TABLE, "expiration")):
        if name in existing:
            continue
        client.create_table(TableName=name, **spec)
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
        client.update_time_to_live(TableName=name,
                                   TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attr})
