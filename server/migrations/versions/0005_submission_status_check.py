"""submissions.status: only the life cycle's states (a CHECK constraint; the column stays VARCHAR(20))

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

STATES = ('queued', 'running', 'graded', 'rejected', 'error')
"""server.models.SubmissionStatus at this revision (a migration does not import the models)."""


def upgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_check_constraint('submission_status', "status IN (" + ", ".join(f"'{s}'" for s in STATES) + ")")


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_constraint('submission_status', type_='check')
