"""The words of billing documents (invoices and statements) in en and zh-CN, chosen once here so the
portal's page and the PDF never say different things (billing/document.py builds the documents)."""

from __future__ import annotations

from .invoice import ADJUSTMENT

# the invoice's labels, fields and notes
WORDS = {
    "en": {"invoice": "Invoice", "number": "Invoice no.", "issuer": "Issuer", "address": "Address",
           "tax_id": "Tax ID", "customer": "Customer", "account": "Account", "issued": "Issue date", "due": "Due date",
           "period": "Period", "currency": "Currency", "payment": "Payment", "lines": "Lines",
           "description": "Description", "quantity": "Quantity", "unit": "Unit", "unit_price": "Unit price",
           "gross": "Amount", "discount": "Discount", "net": "Net", "tax_percent": "VAT%", "tax": "VAT",
           "total": "Total", "by_line": "Totals per product line", "product_line": "Product line",
           "subtotal": "Subtotal", "discount_total": "Discount", "net_total": "Net", "net_of_tax": "Net of VAT", "tax_total": "VAT",
           "total_due": "Total due", "balance": "Balance this month", "opening": "Opening balance",
           "top_ups": "Top-ups", "charges": "Charges", "closing": "Closing balance",
           "adjustment": "refunds & adjustments",
           "adjustment_note": "Refunds & adjustments: what the ledger charged beyond quantity x unit price "
                              "(refunds, re-pricing, minimum charges, rounding per job).",
           "tax_note": "VAT is computed on each line after its discount and rounded half up to the cent.",
           "tax_included_note": "Prices include VAT: each line's VAT is the part of its total at its rate "
                                "(total x rate / (100 + rate)), rounded half up to the cent.",
           "discount_note": "Discount of %s %% under the account's agreement."},
    "zh-CN": {"invoice": "发票", "number": "发票号码", "issuer": "开票方", "address": "地址",
              "tax_id": "纳税人识别号", "customer": "客户", "account": "账户", "issued": "开票日期", "due": "付款期限",
              "period": "账期", "currency": "币种", "payment": "付款方式", "lines": "明细",
              "description": "项目", "quantity": "数量", "unit": "单位", "unit_price": "单价",
              "gross": "金额", "discount": "折扣", "net": "折后金额", "tax_percent": "税率%", "tax": "税额",
              "total": "价税合计", "by_line": "按产品线合计", "product_line": "产品线",
              "subtotal": "小计", "discount_total": "折扣", "net_total": "折后金额", "net_of_tax": "不含税金额", "tax_total": "税额",
              "total_due": "应付总额", "balance": "本月余额变动", "opening": "期初余额",
              "top_ups": "充值", "charges": "消费", "closing": "期末余额",
              "adjustment": "退款及调整",
              "adjustment_note": "退款及调整：账本实收与数量乘单价之差（退款、重新定价、最低收费、逐作业取整）。",
              "tax_note": "增值税按每行折后金额计算，四舍五入到分。",
              "tax_included_note": "价格含税：每行税额按税率从价税合计中分出（价税合计 × 税率 ÷ (100 + 税率)），四舍五入到分。",
              "discount_note": "按账户协议折扣 %s%%。"},
}
PRODUCT_LINES = {"hpc": ("HPC compute", "高性能计算"), "gpu": ("GPU compute", "GPU 算力"),
                 "ai": ("AI compute", "智算"), "cloud": ("Cloud compute", "云算力"), "storage": ("Storage", "存储")}
UNITS = {"core-h": ("core-h", "核时"), "GPU-h": ("GPU-h", "卡时"), ADJUSTMENT: ("", "")}

# the statement's header block
LABELS = {
    "en": {"statement": "Statement", "issuer": "Issuer", "tax_id": "Tax ID", "customer": "Customer",
           "account": "Account", "number": "Statement no.", "issued": "Issue date", "period": "Period",
           "currency": "Currency", "closed": "closed", "open": "open, not yet final", "payment": "Payment"},
    "zh-CN": {"statement": "对账单", "issuer": "出具方", "tax_id": "纳税人识别号", "customer": "客户",
              "account": "账户", "number": "对账单编号", "issued": "出具日期", "period": "账期",
              "currency": "币种", "closed": "已结账", "open": "未结账，金额可能变动", "payment": "付款方式"},
}
# the statement's ledger table and totals
TABLE_WORDS = {
    "en": {"opening": "Opening balance", "date": "date", "what": "what", "job": "job", "core": "core-h",
           "gpu": "GPU-h", "amount": "amount", "detail": "detail", "in": "Top-ups and transfers in",
           "charges": "Charges", "closing": "Closing balance", "held": "Held for running jobs",
           "lines": "Lines"},
    "zh-CN": {"opening": "期初余额", "date": "日期", "what": "类型", "job": "作业", "core": "核时",
              "gpu": "卡时", "amount": "金额", "detail": "明细", "in": "充值及转入",
              "charges": "消费", "closing": "期末余额", "held": "运行中作业冻结",
              "lines": "明细"},
}
KIND_WORDS_ZH = {"topup": "充值", "hold": "冻结", "post": "消费", "void": "解冻", "charge": "消费", "refund": "退款",
                 "transfer": "转账", "adjustment": "调整"}
# the PDF's running footer; CSS counters fill in the page's number and the count of pages
PAGE_WORDS = {"en": "page %(page)s of %(pages)s", "zh-CN": "第 %(page)s 页，共 %(pages)s 页"}
