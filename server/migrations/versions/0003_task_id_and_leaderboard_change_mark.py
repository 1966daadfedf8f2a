"""submission's Celery task id and leaderboard change mark

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('task_id', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('lb_changed', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index('ix_submissions_assignment_lb_changed', ['assignment_id', 'lb_changed'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_assignment_lb_changed')
        batch_op.drop_column('lb_changed')
        batch_op.drop_column('task_id')
