# One image for the four services: pick one with the command, e.g. `python -m services.ingest`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system qunyun
USER qunyun
EXPOSE 8001 8002 8003 8004
CMD ["python", "-m", "services.ingest"]
