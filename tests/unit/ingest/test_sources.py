"""Which configured sources ingest serves webhooks for."""

from services.common.settings import QunyunConfig, Source
from services.ingest.deps import sources_of


def test_outbound_only_platform_sources_are_unknown_to_ingest():
    config = QunyunConfig(
        sources=[
            Source(id="generic-a", platform="generic", secret="s3cret-generic"),
            Source(id="qq-bot", platform="onebot", secret="s3cret-onebot"),
        ]
    )
    assert set(sources_of(config)) == {"generic-a"}
