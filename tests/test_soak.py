"""The short soak (bench/soak.py): six clients (two agents, four customers; two of them child processes that
are SIGKILLed and restarted) chat through the real sync engine for 40 s while the fault proxy drops, stalls
and resets connections and loses responses, and the stack restarts once. Afterwards nothing is lost or
duplicated, each client's order holds, and every cache equals what RLS returns for its user.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import Plan, run


@pytest.mark.soak
@pytest.mark.slow
async def test_chatting_through_faults_loses_nothing_duplicates_nothing_and_converges(tmp_path: Path) -> None:
    result = await run(
        Plan(clients=6, agents=2, killable=2, seconds=40, restarts=1, kills=2, converge_timeout=90), tmp_path
    )
    assert result.sent > 100, result
    assert result.faults.get("stack_restart") == 1 and result.faults.get("client_sigkill") == 2, result.faults
    assert sum(result.faults.values()) >= 10, result.faults
    assert "did not converge" not in result.detail, result
    assert (result.lost, result.duplicated, result.out_of_order, result.cache_mismatches) == (0, 0, 0, 0), result
