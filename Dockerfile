# One image for the five services and the console: pick one with the command, e.g.
# `python -m services.ingest`.
# Dependency versions come from deploy/constraints.txt (the tested venv's; regenerate with
# `.venv/bin/python deploy/constraints.py`). .dockerignore keeps the build context small.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HOST=0.0.0.0
WORKDIR /app
COPY deploy/constraints.txt ./constraints.txt
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system qunyun
USER qunyun
EXPOSE 8001 8002 8003 8004 8005 8006
CMD ["python", "-m", "services.ingest"]
