"""Every model name a caller may use, from one place: ``GET /v1/models``, ``GET
/v1/models/{id}`` and the web app's model lists (the models page, the chat switcher, the
dashboard) all read :func:`load_model_list`.

Sources, in the order the gateway resolves a name (the first one that lists an id
decides what it means): active routes with a target the caller can reach, the local
built-in models (no key, no download), the caller's own and shared trained models
(``local/<name>``), the catalog, and the active admin providers' base and fine-tuned
models. Catalog models whose provider the caller has no key for are kept apart as
*locked* (the models page shows them with where to add a key). Whether a model takes
images (``vision``) follows the rule of :mod:`modelyard.model_list.vision`.
"""

from modelyard.model_list.entries import ListedModel, ModelList, Source
from modelyard.model_list.listing import load_model_list

__all__ = ["ListedModel", "ModelList", "Source", "load_model_list"]
