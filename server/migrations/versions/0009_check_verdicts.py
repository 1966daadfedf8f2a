"""check_verdicts: verdicts a student's later upload may reuse (content-addressed by input key)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'check_verdicts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('submission_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('assignment_id', sa.Integer(), nullable=False),
        sa.Column('check_id', sa.String(length=200), nullable=False),
        sa.Column('origin_upload', sa.Integer(), nullable=False),
        sa.Column('result_json', sa.Text(), nullable=False),
        sa.Column('metrics_json', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], ),
        sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('submission_id', 'check_id', name='uq_check_verdict_submission_check'),
    )
    with op.batch_alter_table('check_verdicts', schema=None) as batch_op:
        batch_op.create_index('ix_check_verdicts_user_assignment_key', ['user_id', 'assignment_id', 'key'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_check_verdicts_submission_id'), ['submission_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('check_verdicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_verdicts_submission_id'))
        batch_op.drop_index('ix_check_verdicts_user_assignment_key')
    op.drop_table('check_verdicts')
