"""nn-autograder's grading engine: pure Python, no Flask.

The public entry point is :func:`grader.api.grade_submission`.
"""
