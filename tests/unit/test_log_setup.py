import json
from datetime import UTC, datetime
from pathlib import Path

from server.log_setup import _json_line


def test_a_json_log_line_keeps_chinese_and_logs_odd_values_as_text() -> None:
    line = _json_line({"event": "case.opened", "hut": "东营区政务晓屋",
                       "path": Path("/data/x"), "at": datetime(2026, 12, 1, tzinfo=UTC)})
    assert "东营区政务晓屋" in line and "\\u" not in line
    assert json.loads(line) == {"event": "case.opened", "hut": "东营区政务晓屋",
                                "path": "/data/x", "at": "2026-12-01T00:00:00+00:00"}
