"""What the two OpenAI protocols' adapters share: one SDK client, its model list, its closing."""

from __future__ import annotations

import openai

from llmtool.catalog import ListedModel
from llmtool.providers.http_client import sdk_http_client
from llmtool.providers.sdk_errors import map_sdk_errors


class OpenAIClientAdapter:
    def __init__(self, name: str, api_key: str, base_url: str | None = None) -> None:
        self.name = name
        # max_retries=0: retries are the service's, or one 429 becomes nine requests.
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0,
                                         http_client=sdk_http_client(openai))

    async def list_models(self) -> list[ListedModel]:
        with map_sdk_errors(openai, self.name):
            return [ListedModel(name=model.id) async for model in self.client.models.list(timeout=10.0)]

    async def aclose(self) -> None:
        await self.client.close()
