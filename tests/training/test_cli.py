"""``modelyard train`` and ``modelyard jobs``, run as an operator would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from modelyard.cli import app
from tests.cli_helpers import invoke, isolate_cli, runner
from tests.training.conftest import chat_rows, classification_rows, write_csv, write_jsonl


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_cli(tmp_path, monkeypatch, migrate=True)


def test_train_classification_and_sft_then_jobs_commands(
    data_dir: Path, tmp_path: Path, tiny_bert: Path, tiny_llama: Path
) -> None:
    reviews = write_csv(tmp_path / "reviews.csv", classification_rows(20))
    code, output = invoke(
        "train", "--data", str(reviews), "--task", "classification", "--base", str(tiny_bert),
        "--name", "cli-classifier", "--max-steps", "3", "--batch-size", "4",
        "--checkpoint-steps", "2",
    )  # fmt: skip
    assert code == 0, output
    assert "Dataset reviews.csv: 20 classification examples. Job 1 queued" in output
    assert re.search(r"succeeded .* 3/3 loss \d", output), output
    assert "samples/s" in output and "eval_accuracy" in output
    # What was not given was chosen, with its reason; the given values were kept.
    assert "Chosen for the data" in output and "max_length = 16" in output, output
    assert "95% of the training texts fit in" in output
    assert "batch_size =" not in output and "learning_rate = 0.0001" in output
    # The test split the training never saw, and the baseline beside it.
    assert "Test split: 2 test examples the training never saw" in output, output
    assert "baseline" in output and "TF-IDF" in output and "Confusion matrix" in output
    assert "Model saved as cli-classifier: use it as local/cli-classifier." in output
    card = json.loads((data_dir / "models/system/cli-classifier/modelyard.json").read_text())
    assert card["task"] == "classification" and card["job_id"] == 1

    chats = write_jsonl(tmp_path / "chats.jsonl", chat_rows(12))
    code, output = invoke(
        "train", "--data", str(chats), "--task", "sft", "--base", str(tiny_llama),
        "--name", "cli-sft", "--max-steps", "2", "--batch-size", "4",
    )  # fmt: skip
    assert code == 0, output
    assert "perplexity" in output and (data_dir / "models/system/cli-sft/config.json").is_file()

    code, output = invoke("jobs", "list")
    assert code == 0 and "cli-classifier" in output and "cli-sft" in output
    assert output.count("succeeded") == 2
    code, output = invoke("jobs", "show", "2")
    assert code == 0 and "Job 2: succeeded (sft, cpu)" in output and "perplexity" in output
    code, output = invoke("jobs", "logs", "1")
    assert code == 0 and "checkpoint" in output and "'state': 'succeeded'" in output
    code, output = invoke("jobs", "cancel", "1")
    assert code == 1 and "has succeeded already" in output
    code, output = invoke("jobs", "show", "99")
    assert code == 1 and "No training job 99" in output


def test_train_shows_how_the_schedule_was_held_to_the_time_target(
    data_dir: Path, tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_TRAINING_CPU_TIME_TARGET_SECONDS", "1")  # missed at once
    reviews = write_csv(tmp_path / "reviews.csv", classification_rows(20))
    code, output = invoke(
        "train", "--data", str(reviews), "--task", "classification", "--base", str(tiny_bert)
    )  # fmt: skip
    assert code == 0, output
    assert "Held to the time target: epochs = 0.1" in output, output
    assert "the CPU time target is 1 s" in output and "Set --epochs to train more" in output


def test_advice_is_applied_or_with_no_apply_only_shown(
    data_dir: Path, tmp_path: Path, tiny_bert: Path
) -> None:
    reviews = write_csv(tmp_path / "reviews.csv", classification_rows(20))
    code, output = invoke(
        "train", "--data", str(reviews), "--task", "classification", "--base", str(tiny_bert),
        "--advice", "--no-apply", "--batch-size", "4",
    )  # fmt: skip
    assert code == 0, output
    assert "Advice from rules" in output and "Chosen for the data" in output
    assert "max_length = 16" in output and "epochs = 10" in output
    assert "  batch_size = " not in output  # given: kept, not chosen
    assert "Not applied (--no-apply): no job was queued." in output
    code, output = invoke("jobs", "list")
    assert code == 0 and "classification" not in output.split("created", 1)[1]


def test_train_refuses_bad_data_and_a_missing_gpu(data_dir: Path, tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "bad.csv", [{"text": "x", "label": ""}] * 12)
    code, output = invoke("train", "--data", str(bad), "--task", "classification")
    assert code == 1 and "line 2: empty label" in output
    assert not (data_dir / "datasets").exists() or not any((data_dir / "datasets").iterdir())
    if torch.cuda.is_available():
        return
    good = write_csv(tmp_path / "good.csv", classification_rows(12))
    code, output = invoke(
        "train", "--data", str(good), "--task", "classification", "--compute", "gpu"
    )
    assert code == 1 and "compute_type gpu: this server has no CUDA GPU" in output
    code, output = invoke("jobs", "list")
    assert code == 0 and "classification" not in output.split("created", 1)[1]


CLI_HF_TOKEN = "hf_canaryclitoken0123456789abcdefgh"


def test_train_with_keys_from_a_hidden_prompt_pushes_to_the_hub(
    data_dir: Path, tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.hub import FakeHub

    reviews = write_csv(tmp_path / "reviews.csv", classification_rows(20))
    with FakeHub(keys={CLI_HF_TOKEN}) as hub:
        monkeypatch.setenv("MODELYARD_HF_ENDPOINT", hub.url)
        result = runner.invoke(
            app,
            [
                "train", "--data", str(reviews), "--task", "classification",
                "--base", str(tiny_bert), "--name", "cli-pushed", "--max-steps", "2",
                "--batch-size", "4", "--keys", "--advice",
            ],
            input=f"{CLI_HF_TOKEN}\n\n",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "Advice from rules" in result.output and "hyperparameters" in result.output
        assert f"Pushed to the Hub: {hub.url}/user-0/cli-pushed" in result.output
        assert hub.repos["user-0/cli-pushed"].private is True
    assert CLI_HF_TOKEN not in result.output
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert CLI_HF_TOKEN.encode() not in path.read_bytes(), path


def test_train_refuses_a_malformed_key_from_the_environment(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reviews = write_csv(tmp_path / "reviews.csv", classification_rows(20))
    monkeypatch.setenv("HF_TOKEN", "hf_short")
    code, output = invoke("train", "--data", str(reviews), "--task", "classification")
    assert code == 2 and "HuggingFace token seems too short" in output
    assert not (data_dir / "datasets").exists() or not any((data_dir / "datasets").iterdir())


def test_jobs_push_sends_a_trained_model_to_the_hub(
    data_dir: Path, tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.hub import FakeHub

    reviews = write_csv(tmp_path / "reviews.csv", classification_rows(20))
    code, output = invoke(
        "train", "--data", str(reviews), "--task", "classification", "--base", str(tiny_bert),
        "--name", "later-pushed", "--max-steps", "2", "--batch-size", "4",
    )  # fmt: skip
    assert code == 0, output
    with FakeHub(keys={CLI_HF_TOKEN}) as hub:
        monkeypatch.setenv("MODELYARD_HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", CLI_HF_TOKEN)
        code, output = invoke("jobs", "push", "1", "--public")
        assert code == 0, output
        assert f"Pushed to the Hub: {hub.url}/user-0/later-pushed" in output
        assert hub.repos["user-0/later-pushed"].private is False
        monkeypatch.setenv("HF_TOKEN", "hf_canaryrefusedclitoken0123456789")
        code, output = invoke("jobs", "push", "1")
        assert code == 1 and "Push failed" in output and "401" in output
