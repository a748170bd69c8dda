def handle(event, context):
    """The python3-http contract: event.body/headers/method/query/path, context.hostname.

    Return a str, bytes, a dict with statusCode/body/headers, or JSON-able data.
    """
    return {"statusCode": 200, "body": "Hello from scalezero: " + event.body.decode()}
