"""Admin views of local training: datasets and jobs (read-only), and a Cancel action.

Jobs are started from the web app, the API or the CLI, where the keys step lives; the
admin watches them and stops runaway ones. Job records hold no secrets.
"""

from __future__ import annotations

from sqladmin import Flash, action
from starlette.requests import Request
from starlette.responses import Response

from modelyard.admin.base import StaffView, selected_ids
from modelyard.db.models import TrainingDataset, TrainingJob
from modelyard.errors import ModelyardError
from modelyard.training import jobs

__all__ = ["TrainingDatasetAdmin", "TrainingJobAdmin"]


class TrainingDatasetAdmin(StaffView, model=TrainingDataset):
    name = "Training dataset"
    name_plural = "Training datasets"
    icon = "fa-solid fa-table"
    category = "Training"
    category_icon = "fa-solid fa-graduation-cap"
    can_create = False
    can_edit = False
    can_delete = False
    column_list = [
        TrainingDataset.id,
        TrainingDataset.created_at,
        TrainingDataset.user_id,
        TrainingDataset.name,
        TrainingDataset.kind,
        TrainingDataset.format,
        TrainingDataset.num_examples,
        TrainingDataset.size_bytes,
    ]
    column_details_list = [*column_list, TrainingDataset.sha256, TrainingDataset.labels]
    column_searchable_list = [TrainingDataset.name]
    column_default_sort = [("id", True)]


class TrainingJobAdmin(StaffView, model=TrainingJob):
    name = "Training job"
    name_plural = "Training jobs"
    icon = "fa-solid fa-dumbbell"
    category = "Training"
    category_icon = "fa-solid fa-graduation-cap"
    can_create = False
    can_edit = False
    can_delete = False
    column_list = [
        TrainingJob.id,
        TrainingJob.created_at,
        TrainingJob.user_id,
        TrainingJob.state,
        TrainingJob.task,
        TrainingJob.base_model,
        TrainingJob.output_name,
        TrainingJob.compute_type,
        TrainingJob.attempts,
    ]
    column_details_list = [
        *column_list,
        TrainingJob.executor,
        TrainingJob.progress,
        TrainingJob.metrics,
        TrainingJob.error,
        TrainingJob.hub_push,
        TrainingJob.config,
        TrainingJob.started_at,
        TrainingJob.finished_at,
    ]
    column_searchable_list = [TrainingJob.output_name, TrainingJob.base_model]
    column_default_sort = [("id", True)]

    @action("cancel", "Cancel", confirmation_message="Cancel the selected jobs?")
    async def cancel(self, request: Request) -> Response:
        """Queued jobs stop at once, running ones within seconds (their runner sees it)."""
        try:
            ids = selected_ids(request, "job")
        except ModelyardError as exc:
            Flash.error(request, exc.message)
            return self.back_to_list(request)
        for job_id in ids:
            try:
                async with self.app_state.database.sessions() as session:
                    job = await jobs.request_cancel(
                        session, await jobs.get_job(session, job_id, None)
                    )
            except ModelyardError as exc:
                Flash.error(request, f"Job {job_id}: {exc.message}")
                continue
            verb = "cancelled" if job.state == "cancelled" else "asked to stop"
            Flash.success(request, f"Job {job_id} {verb}.")
        return self.back_to_list(request)
