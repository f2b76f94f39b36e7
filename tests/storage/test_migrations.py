from sqlalchemy import inspect, text

from storage.models import Base


async def test_migrations_create_every_model_table(engine):
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


async def test_upgrade_is_idempotent(engine):
    from storage.migrate import upgrade

    await upgrade(engine)
    async with engine.connect() as connection:
        version = (await connection.execute(text("select version_num from alembic_version"))).scalar_one()
    assert version == "0001"
