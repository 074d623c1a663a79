"""Fine-tuning: datasets, jobs run in worker processes, trained models served locally.

:mod:`.datasets` checks files, :mod:`.config` types a job's settings, :mod:`.jobs` keeps
the records, :mod:`.runner` runs jobs in :mod:`.worker` processes, :mod:`.tasks` holds
classification and SFT, :mod:`.outputs` saves models with their card.
"""
