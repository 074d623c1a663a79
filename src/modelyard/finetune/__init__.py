"""Fine-tuning through provider APIs (OpenAI, OpenAI-compatible services, custom REST).

* :mod:`~modelyard.finetune.validation` checks a JSONL training file with the provider's
  rules before anything is sent; :mod:`~modelyard.finetune.files` uploads and records it.
* :mod:`~modelyard.finetune.clients` speaks each provider's files and fine-tuning API
  (:mod:`~modelyard.finetune.remote` holds the shared HTTP plumbing and answer types).
* :mod:`~modelyard.finetune.commands` creates and runs commands (``create`` a job,
  ``refresh``, ``cancel``, ``list_events``) on the active default provider, keeping
  every provider failure on the command (:mod:`~modelyard.finetune.preparation` checks
  one before it runs); :mod:`~modelyard.finetune.jobs` stores a job's
  status and events, :mod:`~modelyard.finetune.catalog` publishes the fine-tuned model.
* :mod:`~modelyard.finetune.sync` checks unfinished jobs in the background.

Everything here is staff-only from the outside: it spends the admin provider's money.
"""
