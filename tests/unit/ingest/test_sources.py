"""Which configured sources ingest serves webhooks for."""

from typing import get_args

from services.common.settings import Platform, QunyunConfig, Source
from services.ingest.deps import sources_of
from services.ingest.webhooks import PLATFORMS


def test_every_platform_a_source_may_name_has_a_webhook_adapter():
    # `sources_of` leaves out sources of a platform without one (a webhook to them is a
    # 404, never a 500); since OneBot and WeCom have adapters, every platform is served.
    assert set(get_args(Platform)) == PLATFORMS
    config = QunyunConfig(
        sources=[
            Source(id="generic-a", platform="generic", secret="s3cret-generic"),
            Source(id="qq-bot", platform="onebot", secret="s3cret-onebot"),
        ]
    )
    assert set(sources_of(config)) == {"generic-a", "qq-bot"}
