<#-- twostep: keycloak.v2's login-config-totp.ftl with a first-device / new-device introduction,
     the list of apps that work, the QR code AND the manual key on one page, and labels tied to
     their fields. Form fields (totp, totpSecret, userLabel, mode) are the parent's. -->
<#import "template.ftl" as layout>
<#import "field.ftl" as field>
<#import "password-commons.ftl" as passwordCommons>
<#assign twostepNewDevice = totp.otpCredentials?size gte 1>
<@layout.registrationLayout displayRequiredFields=false displayMessage=!messagesPerField.existsError('totp','userLabel'); section>
<!-- template: login-config-totp.ftl (twostep) -->

    <#if section = "header">
        <#if twostepNewDevice>${msg("twostepTotpTitleNewDevice")}<#else>${msg("twostepTotpTitleFirstDevice")}</#if>
    <#elseif section = "form">
        <div id="twostep-totp-intro" class="twostep-intro">
            <#if twostepNewDevice>
                <p>${msg("twostepTotpIntroNewDevice")}</p>
            <#else>
                <p>${msg("twostepTotpIntroFirstDevice")}</p>
            </#if>
        </div>
        <ol id="kc-totp-settings" class="pf-v5-c-list pf-v5-u-mb-md">
            <li>
                <p>${msg("twostepTotpStepApp")}</p>
                <ul id="kc-totp-supported-apps">
                    <#list totp.supportedApplications as app>
                        <li>${msg(app)}</li>
                    </#list>
                </ul>
                <p>${msg("twostepTotpAnyApp")}</p>
            </li>
            <li>
                <#if mode?? && mode = "manual">
                    <p>${msg("twostepTotpStepKey")}</p>
                    <p><span id="kc-totp-secret-key" class="twostep-key">${totp.totpSecretEncoded}</span></p>
                    <p><a href="${totp.qrUrl}" id="mode-barcode">${msg("twostepTotpShowQr")}</a></p>
                <#else>
                    <p>${msg("twostepTotpStepScan")}</p>
                    <img id="kc-totp-secret-qr-code" src="data:image/png;base64, ${totp.totpSecretQrCode}" alt="${msg("twostepTotpQrAlt")}">
                    <p>${msg("twostepTotpCannotScan")}</p>
                    <p><span id="kc-totp-secret-key" class="twostep-key">${totp.totpSecretEncoded}</span></p>
                </#if>
                <details id="twostep-totp-settings-details">
                    <summary>${msg("twostepTotpSettings")}</summary>
                    <ul>
                        <li id="kc-totp-type">${msg("loginTotpType")}: ${msg("loginTotp." + totp.policy.type)}</li>
                        <li id="kc-totp-algorithm">${msg("loginTotpAlgorithm")}: ${totp.policy.getAlgorithmKey()}</li>
                        <li id="kc-totp-digits">${msg("loginTotpDigits")}: ${totp.policy.digits}</li>
                        <#if totp.policy.type = "totp">
                            <li id="kc-totp-period">${msg("loginTotpInterval")}: ${totp.policy.period}</li>
                        <#elseif totp.policy.type = "hotp">
                            <li id="kc-totp-counter">${msg("loginTotpCounter")}: ${totp.policy.initialCounter}</li>
                        </#if>
                    </ul>
                </details>
            </li>
            <li>
                <p>${msg("twostepTotpStepCode")}</p>
            </li>
        </ol>

        <form action="${url.loginAction}" class="${properties.kcFormClass!}" id="kc-totp-settings-form" method="post" novalidate="novalidate">
            <div class="${properties.kcFormGroupClass!}">
                <div class="${properties.kcLabelClass!}">
                    <label class="pf-v5-c-form__label" for="totp">
                        <span class="pf-v5-c-form__label-text">${msg("authenticatorCode")}</span>&nbsp;<span class="pf-v5-c-form__label-required" aria-hidden="true">&#42;</span>
                    </label>
                </div>
                <div class="${properties.kcInputClass!} <#if messagesPerField.existsError('totp')>pf-m-error</#if>">
                    <input type="text" required id="totp" name="totp" autocomplete="one-time-code"
                           aria-invalid="<#if messagesPerField.existsError('totp')>true</#if>"
                           aria-describedby="twostep-totp-code-help"
                           inputmode="numeric" autofocus
                    />

                    <@field.errorIcon error=messagesPerField.get('totp')/>
                </div>
                <p id="twostep-totp-code-help" class="${properties.kcInputHelperTextItemTextClass!}">${msg("twostepTotpCodeHelp")}</p>
                <#if messagesPerField.existsError('totp')>
                    <span id="input-error-otp-code" class="${properties.kcInputErrorMessageClass!}" aria-live="polite">
                        ${messagesPerField.get('totp')}
                    </span>
                </#if>
                <input type="hidden" id="totpSecret" name="totpSecret" value="${totp.totpSecret}" />
                <#if mode??><input type="hidden" id="mode" name="mode" value="${mode}"/></#if>
            </div>
            <div class="${properties.kcFormGroupClass!}">
                <div class="${properties.kcLabelClass!}">
                    <label class="pf-v5-c-form__label" for="userLabel">
                        <span class="pf-v5-c-form__label-text">${msg("twostepTotpDeviceName")}</span><#if totp.otpCredentials?size gte 1>&nbsp;<span class="pf-v5-c-form__label-required" aria-hidden="true">&#42;</span></#if>
                    </label>
                </div>

                <div class="${properties.kcInputClass!} <#if messagesPerField.existsError('userLabel')>pf-m-error</#if>">
                    <input type="text" id="userLabel" name="userLabel" autocomplete="off"
                           aria-invalid="<#if messagesPerField.existsError('userLabel')>true</#if>"
                           aria-describedby="twostep-totp-device-help"
                    />

                    <@field.errorIcon error=messagesPerField.get('userLabel')/>
                </div>
                <p id="twostep-totp-device-help" class="${properties.kcInputHelperTextItemTextClass!}">${msg("twostepTotpDeviceNameHelp")}</p>
                <#if messagesPerField.existsError('userLabel')>
                    <span id="input-error-otp-label" class="${properties.kcInputErrorMessageClass!}" aria-live="polite">
                        ${messagesPerField.get('userLabel')}
                    </span>
                </#if>
            </div>

            <div class="${properties.kcFormGroupClass!}">
                <@passwordCommons.logoutOtherSessions/>
            </div>

            <div class="pf-v5-c-form__group pf-m-action">
                <div class="pf-v5-c-form__actions">
                    <#if isAppInitiatedAction??>
                        <input type="submit"
                            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonLargeClass!}"
                            id="saveTOTPBtn" value="${msg("doSubmit")}"
                        />
                        <button type="submit"
                                class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!} ${properties.kcButtonLargeClass!}"
                                id="cancelTOTPBtn" name="cancel-aia" value="true">${msg("doCancel")}
                        </button>
                    <#else>
                        <input type="submit"
                            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!} ${properties.kcButtonLargeClass!}"
                            id="saveTOTPBtn" value="${msg("doSubmit")}"
                        />
                    </#if>
                </div>
            </div>
        </form>
    </#if>
</@layout.registrationLayout>
