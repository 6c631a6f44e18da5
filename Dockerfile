# hotline service image. Build: docker build -t hotline .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# eSpeak NG comes with the espeakng-loader wheel; libsndfile/sox are not needed at run time.
COPY pyproject.toml setup.py README.md ./
COPY hotline ./hotline
COPY ussd ./ussd
COPY ivr ./ivr
COPY sms ./sms
COPY api ./api
# gcc only for setup.py's mypyc build of the request path, then gone from the image.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app hotline
COPY flows ./flows
COPY prompts ./prompts
# var/audio exists (owned by hotline) so a named volume mounted there starts writable.
RUN mkdir -p /app/var/audio && chown -R hotline /app/var
USER hotline

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
CMD ["hotline", "serve", "--host", "0.0.0.0", "--port", "8080"]
