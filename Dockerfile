FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY channels channels
COPY bots bots
COPY dialog dialog
COPY ticket_core ticket_core
COPY templates templates
RUN pip install --no-cache-dir .
ENV OMNIGATE_SERVER__HOST=0.0.0.0
EXPOSE 8080
CMD ["omnigate", "serve"]
