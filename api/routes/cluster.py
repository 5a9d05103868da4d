"""``GET /api/v1/cluster`` (admin): the processes sharing the district and who holds each partition.

Read from the state database, so every process answers the same (contract section 12). A process
is listed while its row lives (ten lease TTLs after its last heartbeat); a partition whose lease
ran out shows ``owner: null`` until someone claims it.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import API_CHECKS, Admin, State
from api.routes import AUTH_RESPONSES, FORBIDDEN
from store.state.records import ms_to_dt

router = APIRouter(prefix="/api/v1/cluster", tags=["cluster"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES | FORBIDDEN)


class ProcessOut(BaseModel):
    id: str
    host: str
    pid: int
    roles: list[str]
    partitions: list[int]
    heartbeat_at: datetime


class PartitionOut(BaseModel):
    partition: int
    owner: str | None
    lease_until: datetime | None
    epoch: int


class ClusterOut(BaseModel):
    processes: list[ProcessOut]
    partitions: list[PartitionOut]


@router.get("", response_model=ClusterOut)
def get_cluster(admin: Admin, state: State) -> ClusterOut:
    """The processes (roles, held partitions, last heartbeat) and the partition leases (admin only)."""
    now = state.db_now()
    leases = state.leases()
    held: dict[str, list[int]] = {}
    partitions = []
    for lease in leases:
        owner = lease.owner if lease.owner is not None and lease.lease_until_ms > now else None
        if owner is not None:
            held.setdefault(owner, []).append(lease.partition)
        partitions.append(PartitionOut(partition=lease.partition, owner=owner, epoch=lease.epoch,
                                       lease_until=ms_to_dt(lease.lease_until_ms) if owner else None))
    processes = [ProcessOut(id=p.id, host=p.host, pid=p.pid, roles=list(p.roles), partitions=held.get(p.id, []),
                            heartbeat_at=ms_to_dt(p.heartbeat_ms)) for p in state.processes()]
    return ClusterOut(processes=processes, partitions=partitions)
