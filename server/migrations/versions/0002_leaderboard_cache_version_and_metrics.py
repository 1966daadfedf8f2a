"""leaderboard cache version and metrics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:29:38.507534
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lb_version', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lb_metrics', sa.Text(), nullable=True))

    # Fill the new column from the stored reports.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, result_json FROM submissions WHERE lb_value IS NOT NULL")).all()
    for sid, result in rows:
        metrics = {k: v for k, v in json.loads(result or "{}").get("metrics", {}).items() if v is not None}
        conn.execute(sa.text("UPDATE submissions SET lb_metrics = :m WHERE id = :id"),
                     {"m": json.dumps(metrics), "id": sid})


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('lb_metrics')

    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_column('lb_version')

