from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from segmenta.storage.migrate import alembic_config
from segmenta.storage.models import Base


async def test_migrations_create_every_model_table(engine):
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


async def test_upgrade_is_idempotent(engine):
    from segmenta.storage.migrate import upgrade

    await upgrade(engine)
    async with engine.connect() as connection:
        version = (await connection.execute(text("select version_num from alembic_version"))).scalar_one()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_every_model_column_is_created_by_the_migrations(engine):
    async with engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {(table, column["name"]) for table in Base.metadata.tables for column in inspect(sync).get_columns(table)}
        )
    expected = {(table.name, column.name) for table in Base.metadata.sorted_tables for column in table.columns}
    assert expected <= columns
